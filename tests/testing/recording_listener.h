// Provides RecordingListener: a loopback TCP listener for tests that accepts every connection
// and records what the peer sends, answering nothing. It stands where an attacker's endpoint
// would, to show that nothing (a secret, a token) is ever sent to it. Thread-safe.
#ifndef MAILROOM_TESTS_TESTING_RECORDING_LISTENER_H_
#define MAILROOM_TESTS_TESTING_RECORDING_LISTENER_H_

#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"

namespace mailroom::testing {

class RecordingListener {
 public:
  // Listens on 127.0.0.1 at a free port; port() is 0 if that failed.
  RecordingListener();
  ~RecordingListener();
  RecordingListener(const RecordingListener&) = delete;
  RecordingListener& operator=(const RecordingListener&) = delete;

  int port() const { return port_; }
  int connections() const;
  // Everything every peer sent, concatenated.
  std::string received() const;

 private:
  void Serve();

  int listener_ = -1;
  int port_ = 0;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int connections_ ABSL_GUARDED_BY(mu_) = 0;
  std::string received_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace mailroom::testing

#endif  // MAILROOM_TESTS_TESTING_RECORDING_LISTENER_H_
