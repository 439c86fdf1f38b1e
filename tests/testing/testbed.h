// Provides Testbed, which runs the real loopback Exchange-like environment for end-to-end
// tests (tests/e2e/testbed/testbed.sh: oidc-provider as the Entra-shaped token endpoint,
// Dovecot validating XOAUTH2 bearer tokens, a private Postfix as the STARTTLS submission
// server delivering into a Maildir, Postfix's smtp-sink for fault injection, and tinyproxy as an
// HTTP proxy that allows, denies or authenticates CONNECT tunnels) in a short
// temporary directory; reads its testbed.env; fetches tokens; finds delivered messages by
// their Delivered-To header; and stops everything it started when destroyed, also when the
// test failed (and, best effort, when the test process is killed by a signal). The directory
// is removed afterwards unless a test failed or MAILROOM_KEEP_TESTBED is set.
// Tests using it need root and `tags = ["local", "exclusive"]` (see testbed.md).
// Not thread-safe.
#ifndef MAILROOM_TESTS_TESTING_TESTBED_H_
#define MAILROOM_TESTS_TESTING_TESTBED_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace mailroom::testing {

// A message in the testbed's Maildir.
struct DeliveredMessage {
  absl::Time delivered;  // when the delivery agent wrote it (the file's modification time)
  std::string text;      // the whole message, headers first
};

// An HTTP proxy started by Testbed::StartProxy.
struct TestProxy {
  int port = 0;
  std::string url;               // "http://127.0.0.1:PORT" ("https://" for mode "tls")
  std::string log_path;          // tinyproxy's log: one "Request ... CONNECT" line per tunnel
  std::string credentials_file;  // "user:password", mode 0600 (mode "auth" only)
};

class Testbed {
 public:
  // Creates a directory with `mktemp -d /tmp/mr.XXXXXX` (mode 755) and runs
  // `testbed.sh start DIR`. On failure everything started is stopped and the error carries
  // the script's output.
  static absl::StatusOr<std::unique_ptr<Testbed>> Start();

  ~Testbed();
  Testbed(const Testbed&) = delete;
  Testbed& operator=(const Testbed&) = delete;

  const std::string& dir() const { return dir_; }

  // The values of DIR/testbed.env (TOKEN_URL, CLIENT_ID, MAILBOX, SMTP_PORT, CA_FILE, ...).
  const std::map<std::string, std::string>& env() const { return env_; }
  // One value; empty if absent.
  std::string Env(absl::string_view key) const;
  // One value as a number; 0 if absent or not a number.
  int EnvInt(absl::string_view key) const;

  // A token from the testbed's token endpoint (client credentials, TOKEN_URL and SCOPE).
  absl::StatusOr<std::string> FetchToken(const std::string& client_id,
                                         const std::string& client_secret) const;
  // A token of the app granted MAILBOX (CLIENT_ID / CLIENT_SECRET).
  absl::StatusOr<std::string> FetchToken() const;

  // Starts Postfix's smtp-sink on a free loopback port with `options` (e.g. {"-Q", "MAIL"});
  // returns its port. It is stopped with the testbed.
  absl::StatusOr<int> StartSink(const std::vector<std::string>& options) const;

  // Starts tinyproxy on a free loopback port (testbed.sh proxy): `mode` "allow" tunnels to any
  // port, "deny" answers 403 to CONNECT for any port but 443, "auth" requires the Basic
  // credentials it writes to credentials_file, "tls" is an https:// proxy (stunnel with the
  // testbed's trusted server certificate, CA_FILE, in front of an allowing tinyproxy). It is
  // stopped with the testbed.
  absl::StatusOr<TestProxy> StartProxy(const std::string& mode) const;
  // The targets ("HOST:PORT") the proxy was asked to CONNECT to so far, in order.
  static std::vector<std::string> ProxyConnects(const TestProxy& proxy);

  // The messages in the Maildir whose header says "Delivered-To: <recipient>", oldest first.
  std::vector<std::string> DeliveredTo(const std::string& recipient) const;
  // The same, with the time each was delivered.
  std::vector<DeliveredMessage> DeliveredWithTimes(const std::string& recipient) const;
  // Waits until at least `count` such messages exist, up to `timeout`; returns what is there.
  std::vector<std::string> WaitForDelivered(const std::string& recipient, size_t count,
                                            absl::Duration timeout) const;

  // The mailboxes granted to the good app besides MAILBOX (POOL_MAILBOXES: alerts@, guests@,
  // pool1@, pool2@ example.test unless TESTBED_POOL_MAILBOXES said otherwise at start).
  std::vector<std::string> PoolMailboxes() const;

  // Whether `mailbox` (the SASL login) has spent its daily sending quota: while it has, every
  // message it submits gets Exchange's 554 5.2.0 SubmissionQuotaExceeded at RCPT TO, and
  // other mailboxes are not affected (testbed.sh quota-fault-mailbox; for SMTP sessions opened
  // afterwards: a session already open keeps sending).
  absl::Status SetMailboxQuotaExceeded(const std::string& mailbox, bool exceeded) const;

  // Runs `testbed.sh ARGS...` on this testbed's directory (e.g. {"svc-stop", dir(),
  // "postfix"}); returns the exit code, and the output in `output` if given.
  int RunScript(const std::vector<std::string>& args, std::string* output = nullptr) const;

 private:
  explicit Testbed(std::string dir) : dir_(std::move(dir)) {}
  // Runs `testbed.sh ARGS...` whose last line of output is "PORT PID"; returns PORT.
  absl::StatusOr<int> RunScriptForPort(const std::vector<std::string>& args) const;

  const std::string dir_;
  std::map<std::string, std::string> env_;
};

// A loopback TCP port that nothing listens on (bound, then released).
int UnusedLoopbackPort();
// Whether something accepts connections on 127.0.0.1:`port`.
bool LoopbackPortOpen(int port);

// The runfiles path of a workspace file.
std::string TestbedRunfile(const std::string& workspace_path);

}  // namespace mailroom::testing

#endif  // MAILROOM_TESTS_TESTING_TESTBED_H_
