// Provides Mailroomctl, which runs the real mailroomctl binary (the runfile cli/mailroomctl,
// which the test lists in its data) as an administrator for end-to-end tests: it writes an
// AdminClientConfig with the admin certificate of a gen-certs.sh directory and the cluster's
// targets, runs commands with their words shell-quoted, and returns the exit code and the
// output (stdout and stderr together), echoing each transcript to the test log as an operator
// would see it. Not thread-safe.
#ifndef MAILROOM_TESTS_TESTING_MAILROOMCTL_H_
#define MAILROOM_TESTS_TESTING_MAILROOMCTL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace mailroom::testing {

struct CtlResult {
  int exit_code = -1;  // -1 if it did not exit normally
  std::string output;  // stdout and stderr together
};

class Mailroomctl {
 public:
  // Writes `dir`/admin.textproto: the TLS files of node "admin" in `certs`, then
  // `targets_text` (AdminClientConfig fields, e.g. "broker_target: \"localhost:7100\"").
  Mailroomctl(const std::string& dir, const std::string& certs, const std::string& targets_text);

  // Runs `mailroomctl --config=<config> ARGS...` and waits for it; `stdin_text`, if not
  // empty, is its standard input (e.g. a password for password_file=-).
  CtlResult Run(const std::vector<std::string>& args, const std::string& stdin_text = "") const;

  const std::string& config_path() const { return config_; }

 private:
  std::string dir_;
  std::string config_;
};

// Parses the output of a `--json` command (its one JSON object, whatever surrounds it) into
// `message`; an error says why not.
absl::Status ParseJsonOutput(const std::string& output, google::protobuf::Message* message);

}  // namespace mailroom::testing

#endif  // MAILROOM_TESTS_TESTING_MAILROOMCTL_H_
