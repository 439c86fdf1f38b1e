// Provides ChildProcess, a real process started for an end-to-end test (a mailroom binary
// or a peer), with its stdout and stderr in a log file, stopped with SIGTERM or killed with
// SIGKILL, and always reaped; and WaitFor, the polling wait of end-to-end tests for what such
// a process does. Not thread-safe.
#ifndef MAILROOM_TESTS_TESTING_PROCESS_H_
#define MAILROOM_TESTS_TESTING_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace mailroom::testing {

class ChildProcess {
 public:
  // Starts `argv[0]` with `argv`; output goes to `log_path` (appended).
  ChildProcess(std::vector<std::string> argv, std::string log_path);
  ~ChildProcess();  // kills and reaps if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends SIGTERM and waits up to `timeout`; returns the exit status (or -1).
  int Terminate(absl::Duration timeout = absl::Seconds(15));
  // SIGKILL, then reap.
  void Kill();
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string log_path_;
};

// Where a process of a test runs on the network: by default in the test's own network namespace,
// on loopback. With `netns` (a namespace the test's wrapper made, as
// tests/e2e/broker_partition_e2e_test.sh does) the command runs through `ip netns exec`, which
// execs it (the child's pid is the command's own) with that namespace's hosts file; it listens
// on `listen_host`, and peers reach it as `name` (the hosts files and certificates carry it).
struct NetworkPlacement {
  std::string netns;
  std::string listen_host = "127.0.0.1";
  std::string name = "localhost";
};

// `argv`, run as `placement` says.
std::vector<std::string> PlacedCommand(const NetworkPlacement& placement,
                                       std::vector<std::string> argv);

// Waits until `path` exists and is non-empty, up to `timeout`; returns its content.
std::string WaitForFile(const std::string& path, absl::Duration timeout);

// Polls `done` every 200 ms (real time) until it holds or `timeout` passes; returns whether
// it held.
bool WaitFor(const std::function<bool()>& done, absl::Duration timeout);

// Reads a whole file ("" if missing).
std::string ReadAll(const std::string& path);

}  // namespace mailroom::testing

#endif  // MAILROOM_TESTS_TESTING_PROCESS_H_
