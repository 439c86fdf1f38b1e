// Provides what the e2e tests that push a burst of guest self-registrations through real PSNs
// share: the registration a portal sends (the same request when retried, so the PSN's
// idempotency key holds), the Message-ID a delivered copy carries, and the wait until every
// acknowledged registration has arrived in the testbed's mailbox, counted from the Maildir
// rather than from mailroom's counters. Stateless apart from the registrations' shared
// validity start.
#ifndef MAILROOM_TESTS_TESTING_GUEST_BURST_H_
#define MAILROOM_TESTS_TESTING_GUEST_BURST_H_

#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/mailroom/psn/v1/psn.pb.h"
#include "tests/testing/node_harness.h"
#include "tests/testing/testbed.h"

namespace mailroom::testing {

// A mailroom-psn named `name` (a certificate in `certs`) in `dir` that sends guest
// notifications from `mailbox`, retrying a failed delivery after 1 s to 5 s; the caller names
// its broker(s).
NodeSpec GuestPsnSpec(const std::string& name, const std::string& dir, const std::string& certs,
                      const std::string& mailbox);

// A mailroom-mnt named "mnt1" (a certificate in `certs`) in `dir` whose mnt { ... } config is
// `mnt_config`, logging at `level` ("LOG_LEVEL_WARN", ...); the caller names its broker(s) and
// any other config.
NodeSpec MntSpec(const std::string& dir, const std::string& certs, const std::string& mnt_config,
                 const std::string& level);

// A paced burst of registrations from portals: even requests through the first PSN, odd through
// the second, `threads_per_psn` portal threads a PSN, each sending a request every `pace`
// (deadline 5 s). The threads start at construction. Thread-safe.
class GuestBurst {
 public:
  GuestBurst(std::vector<NodeHarness*> psns, std::string tag, std::string to, int requests,
             int threads_per_psn, absl::Duration pace);
  ~GuestBurst() { Join(); }
  GuestBurst(const GuestBurst&) = delete;
  GuestBurst& operator=(const GuestBurst&) = delete;

  // Waits until every portal thread has sent its share.
  void Join();
  // Requests answered so far (acknowledged or not), and acknowledged by the PSN at `psn`.
  int answered() const;
  int acked_by(int psn) const;
  // Request → Message-ID of every acknowledged request; the requests that were not.
  std::map<int, std::string> acked() const;
  std::vector<int> unacked() const;
  // Sends each unacknowledged request again through its PSN, as the portal retries it (same
  // idempotency key), with `deadline` a call; fails at the first that is not acknowledged.
  absl::Status RetryUnacked(absl::Duration deadline);

 private:
  // Sends request `index` through its PSN; records the answer.
  grpc::Status Send(int index, absl::Duration deadline);

  const std::vector<NodeHarness*> psns_;
  const std::string tag_;
  const std::string to_;
  mutable std::mutex mu_;
  std::map<int, std::string> acked_;  // guarded by mu_
  std::vector<int> unacked_;          // guarded by mu_
  std::vector<int> acked_by_;         // guarded by mu_
  std::vector<std::thread> portals_;
};

// Guest `tag`<index>'s self-registration to `to`, with idempotency key "<tag>-<index>".
mailroom::psn::v1::NotifySelfRegistrationRequest GuestRegistration(absl::string_view tag,
                                                                    int index,
                                                                    const std::string& to);

// A sponsor's "create accounts" for guests `tag`0 .. `tag`<count - 1> (as GuestRegistration
// makes them), each emailed its credentials at `to`, through portal "sponsor" with
// idempotency key `tag`; the sponsor is "sponsor-<tag>" at sponsor-<tag>@example.test.
mailroom::psn::v1::NotifySponsorCreatedAccountsRequest SponsorCreatedAccounts(
    absl::string_view tag, int count, const std::string& to);

// "<id>" from a delivered message's Message-ID header; empty if it has none.
std::string MessageIdOf(const std::string& maildir_message);

// Waits up to `timeout` until every message id in `acked` (request → Message-ID, as the PSN
// acknowledged it) has been delivered to `to`; returns how many have not. `copies` gets the
// delivered copies per "<Message-ID>".
int AwaitDelivered(const Testbed& testbed, const std::string& to,
                   const std::map<int, std::string>& acked, absl::Duration timeout,
                   std::map<std::string, int>* copies);

// Arrivals per 10 s from `since`, e.g. "7 6 0 0 0 0 5 8": how the MTA saw the burst.
std::string ArrivalsPerTenSeconds(const std::vector<absl::Time>& arrivals, absl::Time since);

}  // namespace mailroom::testing

#endif  // MAILROOM_TESTS_TESTING_GUEST_BURST_H_
