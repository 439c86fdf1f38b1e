#include "tests/testing/guest_burst.h"

#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/rpc/status_grpc.h"
#include "proto/mailroom/psn/v1/psn.grpc.pb.h"

namespace mailroom::testing {

namespace v1 = ::mailroom::psn::v1;

NodeSpec GuestPsnSpec(const std::string& name, const std::string& dir, const std::string& certs,
                      const std::string& mailbox) {
  NodeSpec spec;
  spec.binary = "psn/mailroom-psn";
  spec.role = "ROLE_PSN";
  spec.node_name = name;
  spec.dir = dir;
  spec.certs = certs;
  spec.extra_config = absl::StrCat(
      "delivery { backoff_initial { seconds: 1 } backoff_max { seconds: 5 } }\n"
      "psn { guest_email_settings { notifications_enabled: true default_from { address: \"",
      mailbox, "\" } } }\n");
  return spec;
}

NodeSpec MntSpec(const std::string& dir, const std::string& certs, const std::string& mnt_config,
                 const std::string& level) {
  NodeSpec spec;
  spec.binary = "mnt/mailroom-mnt";
  spec.role = "ROLE_MNT";
  spec.node_name = "mnt1";
  spec.dir = dir;
  spec.certs = certs;
  spec.logging = absl::StrCat("logging { default_level: ", level, " }");
  spec.extra_config = absl::StrCat("mnt { ", mnt_config, " }\n");
  return spec;
}

GuestBurst::GuestBurst(std::vector<NodeHarness*> psns, std::string tag, std::string to,
                       int requests, int threads_per_psn, absl::Duration pace)
    : psns_(std::move(psns)), tag_(std::move(tag)), to_(std::move(to)), acked_by_(psns_.size()) {
  const int stride = static_cast<int>(psns_.size()) * threads_per_psn;
  for (int first = 0; first < stride; ++first) {
    portals_.emplace_back([this, first, stride, requests, pace] {
      for (int i = first; i < requests; i += stride) {
        Send(i, absl::Seconds(5));
        absl::SleepFor(pace);
      }
    });
  }
}

void GuestBurst::Join() {
  for (std::thread& portal : portals_) {
    if (portal.joinable()) portal.join();
  }
}

int GuestBurst::answered() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(acked_.size() + unacked_.size());
}

int GuestBurst::acked_by(int psn) const {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_by_[psn];
}

std::map<int, std::string> GuestBurst::acked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_;
}

std::vector<int> GuestBurst::unacked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unacked_;
}

absl::Status GuestBurst::RetryUnacked(absl::Duration deadline) {
  std::vector<int> retry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    retry.swap(unacked_);
  }
  for (int index : retry) {
    const grpc::Status status = Send(index, deadline);
    if (!status.ok()) return FromGrpcStatus(status);
  }
  return absl::OkStatus();
}

grpc::Status GuestBurst::Send(int index, absl::Duration deadline) {
  const size_t psn = index % psns_.size();
  // A channel a call: a PSN may have been restarted since the last one.
  auto stub = v1::GuestNotifications::NewStub(psns_[psn]->ChannelAs("portal"));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  v1::NotifySelfRegistrationResponse response;
  const grpc::Status status =
      stub->NotifySelfRegistration(&context, GuestRegistration(tag_, index, to_), &response);
  std::lock_guard<std::mutex> lock(mu_);
  if (status.ok()) {
    acked_[index] = response.notification().message_id();
    ++acked_by_[psn];
  } else {
    unacked_.push_back(index);
  }
  return status;
}

v1::NotifySelfRegistrationRequest GuestRegistration(absl::string_view tag, int index,
                                                    const std::string& to) {
  static const int64_t now = absl::ToUnixSeconds(absl::Now());  // identical when retried
  v1::NotifySelfRegistrationRequest request;
  v1::Guest* guest = request.mutable_guest();
  guest->set_username(absl::StrCat(tag, index));
  guest->set_password(absl::StrCat("Pw-", tag, index, "-8kQ"));
  guest->set_first_name("Guest");
  guest->set_last_name(absl::StrCat("Number ", index));
  guest->mutable_email()->set_address(to);
  guest->mutable_valid_from()->set_seconds(now);
  guest->mutable_valid_until()->set_seconds(now + 86400);
  request.set_portal_id("lobby");
  request.set_idempotency_key(absl::StrCat(tag, "-", index));
  return request;
}

v1::NotifySponsorCreatedAccountsRequest SponsorCreatedAccounts(absl::string_view tag, int count,
                                                               const std::string& to) {
  v1::NotifySponsorCreatedAccountsRequest request;
  for (int i = 0; i < count; ++i) {
    *request.add_guests() = GuestRegistration(tag, i, to).guest();
  }
  request.mutable_sponsor()->set_username(absl::StrCat("sponsor-", tag));
  request.mutable_sponsor()->mutable_email()->set_address(
      absl::StrCat("sponsor-", tag, "@example.test"));
  request.set_portal_id("sponsor");
  request.set_idempotency_key(std::string(tag));
  return request;
}

std::string MessageIdOf(const std::string& maildir_message) {
  for (absl::string_view line : absl::StrSplit(maildir_message, '\n')) {
    if (absl::StartsWithIgnoreCase(line, "Message-ID:")) {
      return std::string(absl::StripAsciiWhitespace(line.substr(11)));
    }
  }
  return "";
}

int AwaitDelivered(const Testbed& testbed, const std::string& to,
                   const std::map<int, std::string>& acked, absl::Duration timeout,
                   std::map<std::string, int>* copies) {
  int lost = static_cast<int>(acked.size());
  for (const absl::Time deadline = absl::Now() + timeout; lost > 0 && absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(500));
    copies->clear();
    for (const std::string& message : testbed.DeliveredTo(to)) ++(*copies)[MessageIdOf(message)];
    lost = 0;
    for (const auto& [index, message_id] : acked) lost += copies->count("<" + message_id + ">") == 0;
  }
  return lost;
}

std::string ArrivalsPerTenSeconds(const std::vector<absl::Time>& arrivals, absl::Time since) {
  std::string out;
  for (int bucket = 0;
       !arrivals.empty() && bucket * 10 <= absl::ToInt64Seconds(arrivals.back() - since);
       ++bucket) {
    int n = 0;
    for (absl::Time t : arrivals) n += absl::ToInt64Seconds(t - since) / 10 == bucket;
    absl::StrAppend(&out, out.empty() ? "" : " ", n);
  }
  return out;
}

}  // namespace mailroom::testing
