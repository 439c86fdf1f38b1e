#include "pan/broker/transport_fallback.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/proto_time.h"

namespace mailroom::broker {

TransportFallback::TransportFallback(const Clock* clock, FallbackPolicy policy)
    : clock_(clock), policy_(policy) {
  state_.set_transport(v1::MAIL_TRANSPORT_SMTP);
}

void TransportFallback::Reset(bool enabled, const v1::EffectiveTransport& saved,
                              absl::Time saved_since) {
  enabled_ = enabled;
  connect_failures_ = 0;
  first_connect_failure_ = absl::InfiniteFuture();
  state_.Clear();
  if (enabled && saved.transport() == v1::MAIL_TRANSPORT_GRAPH) {
    state_ = saved;
    return;
  }
  state_.set_transport(v1::MAIL_TRANSPORT_SMTP);
  ToProto(saved.transport() == v1::MAIL_TRANSPORT_SMTP && saved.has_since()
              ? FromProto(saved.since())
              : saved_since,
          state_.mutable_since());
  if (saved.transport() == v1::MAIL_TRANSPORT_SMTP) state_.set_reason(saved.reason());
}

bool TransportFallback::MoveTo(v1::MailTransport transport, std::string reason) {
  connect_failures_ = 0;
  first_connect_failure_ = absl::InfiniteFuture();
  if (!enabled_ || state_.transport() == transport) return false;
  state_.set_transport(transport);
  ToProto(clock_->Now(), state_.mutable_since());
  state_.set_reason(std::move(reason));
  return true;
}

bool TransportFallback::OnSmtpAuthDisabled(const std::string& node, const std::string& reply) {
  if (effective() != v1::MAIL_TRANSPORT_SMTP) return false;
  return MoveTo(v1::MAIL_TRANSPORT_GRAPH,
                absl::StrCat(node, " got \"", reply, "\" from the SMTP server"));
}

bool TransportFallback::OnSmtpConnectFailure(const std::string& node, const std::string& detail) {
  if (!enabled_ || effective() != v1::MAIL_TRANSPORT_SMTP) return false;
  const absl::Time now = clock_->Now();
  if (connect_failures_ == 0) first_connect_failure_ = now;
  ++connect_failures_;
  if (connect_failures_ < policy_.connect_failures ||
      now - first_connect_failure_ < policy_.connect_outage) {
    return false;
  }
  const int failures = connect_failures_;
  const absl::Duration outage = now - first_connect_failure_;
  return MoveTo(v1::MAIL_TRANSPORT_GRAPH,
                absl::StrCat("the SMTP endpoint was unreachable: ", failures,
                             " connect failures in a row over ",
                             absl::FormatDuration(absl::Floor(outage, absl::Seconds(1))),
                             ", the last seen by ", node, ": ", detail));
}

void TransportFallback::OnSmtpDelivered() {
  if (effective() != v1::MAIL_TRANSPORT_SMTP) return;
  connect_failures_ = 0;
  first_connect_failure_ = absl::InfiniteFuture();
}

bool TransportFallback::OnSmtpTestPassed() {
  return MoveTo(v1::MAIL_TRANSPORT_SMTP, "an SMTP Test Connection of the mailbox passed");
}

MailboxFallbacks::MailboxFallbacks(const Clock* clock, FallbackPolicy policy)
    : clock_(clock), policy_(policy) {}

void MailboxFallbacks::Reset(const std::vector<std::string>& enabled,
                             const std::map<std::string, v1::EffectiveTransport>& saved,
                             absl::Time saved_since) {
  by_mailbox_.clear();
  for (const std::string& address : enabled) {
    auto [it, inserted] = by_mailbox_.try_emplace(address, clock_, policy_);
    auto state = saved.find(address);
    it->second.Reset(/*enabled=*/true,
                     state == saved.end() ? v1::EffectiveTransport() : state->second,
                     saved_since);
  }
}

TransportFallback* MailboxFallbacks::Find(const std::string& address) {
  auto it = by_mailbox_.find(address);
  return it == by_mailbox_.end() ? nullptr : &it->second;
}

const TransportFallback* MailboxFallbacks::Find(const std::string& address) const {
  auto it = by_mailbox_.find(address);
  return it == by_mailbox_.end() ? nullptr : &it->second;
}

}  // namespace mailroom::broker
