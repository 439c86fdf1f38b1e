// Provides MtaMeter, which counts what the testbed's MTA sees, the way Exchange counts a
// mailbox's limits: each message Postfix takes from a mailbox, timed to the microsecond when
// Postfix has the whole message (it asks the meter's policy service at END-OF-MESSAGE, before
// it answers the final "."), and the SMTP sessions open at once on the submission listener
// (from the order of Postfix's "connect from" / "disconnect from" log lines, which one process,
// postlogd, writes in the order it gets them). The counting is at the receiving side only:
// nothing here asks mailroom (tests/testing/rolling_window.h turns arrivals into the most in any
// rolling minute). Thread-safe.
#ifndef MAILROOM_TESTS_TESTING_MTA_METER_H_
#define MAILROOM_TESTS_TESTING_MTA_METER_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/testing/testbed.h"

namespace mailroom::testing {

class MtaMeter {
 public:
  // Starts the policy service on a free loopback port, points the testbed's Postfix at it
  // (smtpd_end_of_data_restrictions, then a reload), and returns once Postfix uses it: a probe
  // message from OTHER_MAILBOX (not counted for MAILBOX) has been seen. Sessions are counted
  // from then on. `testbed` must outlive the meter.
  static absl::StatusOr<std::unique_ptr<MtaMeter>> Attach(const Testbed& testbed);
  ~MtaMeter();
  MtaMeter(const MtaMeter&) = delete;
  MtaMeter& operator=(const MtaMeter&) = delete;

  // When each message from `sasl_username` was taken, oldest first.
  std::vector<absl::Time> Arrivals(const std::string& sasl_username) const;
  // The most SMTP sessions open at once on the submission listener since Attach.
  int MostConcurrentSessions() const;

 private:
  struct Arrival {
    absl::Time time;
    std::string sasl_username;
  };

  explicit MtaMeter(const Testbed& testbed) : testbed_(testbed) {}
  absl::Status Listen();
  void Serve();
  // One policy request (attribute lines, without the empty line that ends it).
  void Record(const std::string& request);

  const Testbed& testbed_;
  int listen_fd_ = -1;
  int port_ = 0;
  int stop_pipe_[2] = {-1, -1};
  size_t log_offset_ = 0;  // where the Postfix log stood once Postfix used the meter
  std::thread server_;
  mutable absl::Mutex mu_;
  std::vector<Arrival> arrivals_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mailroom::testing

#endif  // MAILROOM_TESTS_TESTING_MTA_METER_H_
