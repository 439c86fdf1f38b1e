#include "tests/testing/mta_meter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/mail/smtp_client.h"
#include "tests/testing/process.h"

namespace mailroom::testing {
namespace {

constexpr char kProbeRecipient[] = "mta-meter-probe@example.test";
// The submission listener's log name (testbed.sh: syslog_name=postfix/submission).
constexpr char kSubmissionSmtpd[] = " postfix/submission/smtpd[";

// One probe message from OTHER_MAILBOX, so that MAILBOX's count is left alone.
absl::Status SendProbe(const Testbed& testbed) {
  absl::StatusOr<std::string> token =
      testbed.FetchToken(testbed.Env("OTHER_CLIENT_ID"), testbed.Env("OTHER_CLIENT_SECRET"));
  if (!token.ok()) return token.status();
  SmtpEndpoint endpoint;
  endpoint.host = testbed.Env("SMTP_HOST");
  endpoint.port = testbed.EnvInt("SMTP_PORT");
  endpoint.ca_file = testbed.Env("CA_FILE");
  endpoint.use_system_roots = false;
  endpoint.connect_timeout = absl::Seconds(10);
  endpoint.reply_timeout = absl::Seconds(10);
  endpoint.operation_timeout = absl::Seconds(20);
  const std::string from = testbed.Env("OTHER_MAILBOX");
  SmtpSession session(endpoint, from);
  session.SetBearerToken(*token);
  const SendResult sent = session.Send(
      from, {kProbeRecipient},
      absl::StrCat("From: <", from, ">\r\nTo: <", kProbeRecipient,
                   ">\r\nSubject: MTA meter probe\r\n\r\nprobe\r\n"));
  if (!sent.ok) return absl::UnavailableError(absl::StrCat("probe refused: ", sent.reply.raw));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<MtaMeter>> MtaMeter::Attach(const Testbed& testbed) {
  std::unique_ptr<MtaMeter> meter(new MtaMeter(testbed));
  if (absl::Status listening = meter->Listen(); !listening.ok()) return listening;
  meter->server_ = std::thread([m = meter.get()] { m->Serve(); });
  std::string output;
  if (testbed.RunScript({"postconf", testbed.dir(),
                         absl::StrCat("smtpd_end_of_data_restrictions=check_policy_service "
                                      "inet:127.0.0.1:",
                                      meter->port_)},
                        &output) != 0) {
    return absl::InternalError(absl::StrCat("testbed.sh postconf failed: ", output));
  }
  // Postfix's running smtpd processes finish with the old settings: probe until a new one asks.
  const std::string other = testbed.Env("OTHER_MAILBOX");
  for (absl::Time deadline = absl::Now() + absl::Seconds(30); absl::Now() < deadline;) {
    absl::Status probe = SendProbe(testbed);
    if (!meter->Arrivals(other).empty()) {
      meter->log_offset_ = ReadAll(testbed.Env("POSTFIX_LOG")).size();
      return meter;
    }
    absl::SleepFor(absl::Milliseconds(probe.ok() ? 200 : 1000));
  }
  return absl::DeadlineExceededError("Postfix never asked the MTA meter's policy service");
}

absl::Status MtaMeter::Listen() {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  if (listen_fd_ < 0 || pipe(stop_pipe_) != 0) return absl::InternalError("socket/pipe failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(listen_fd_, 64) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return absl::InternalError("cannot listen on a loopback port");
  }
  port_ = ntohs(address.sin_port);
  return absl::OkStatus();
}

MtaMeter::~MtaMeter() {
  if (server_.joinable()) {
    const char stop = 'x';
    (void)!write(stop_pipe_[1], &stop, 1);
    server_.join();
  }
  for (int fd : {listen_fd_, stop_pipe_[0], stop_pipe_[1]}) {
    if (fd >= 0) close(fd);
  }
}

void MtaMeter::Serve() {
  std::map<int, std::string> clients;  // socket → bytes not yet parsed
  while (true) {
    std::vector<pollfd> fds = {{stop_pipe_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    for (const auto& [fd, unused] : clients) fds.push_back({fd, POLLIN, 0});
    if (poll(fds.data(), fds.size(), -1) < 0) continue;
    if (fds[0].revents != 0) break;
    if (fds[1].revents & POLLIN) {
      const int client = accept(listen_fd_, nullptr, nullptr);
      if (client >= 0) clients[client] = "";
    }
    for (size_t i = 2; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      const int fd = fds[i].fd;
      char buffer[4096];
      const ssize_t n = read(fd, buffer, sizeof(buffer));
      if (n <= 0) {
        close(fd);
        clients.erase(fd);
        continue;
      }
      std::string& pending = clients[fd];
      pending.append(buffer, n);
      // Postfix's policy protocol: "name=value" lines, an empty line ends a request.
      for (size_t end; (end = pending.find("\n\n")) != std::string::npos;) {
        Record(pending.substr(0, end));
        pending.erase(0, end + 2);
        constexpr char kReply[] = "action=DUNNO\n\n";
        (void)!write(fd, kReply, sizeof(kReply) - 1);
      }
    }
  }
  for (const auto& [fd, unused] : clients) close(fd);
}

void MtaMeter::Record(const std::string& request) {
  const absl::Time now = absl::Now();
  bool end_of_message = false;
  std::string username;
  for (absl::string_view line : absl::StrSplit(request, '\n')) {
    if (line == "protocol_state=END-OF-MESSAGE") end_of_message = true;
    if (absl::ConsumePrefix(&line, "sasl_username=")) username = std::string(line);
  }
  if (!end_of_message) return;
  absl::MutexLock lock(&mu_);
  arrivals_.push_back(Arrival{now, username});
}

std::vector<absl::Time> MtaMeter::Arrivals(const std::string& sasl_username) const {
  absl::MutexLock lock(&mu_);
  std::vector<absl::Time> out;
  for (const Arrival& arrival : arrivals_) {
    if (arrival.sasl_username == sasl_username) out.push_back(arrival.time);
  }
  return out;
}

int MtaMeter::MostConcurrentSessions() const {
  const std::string log = ReadAll(testbed_.Env("POSTFIX_LOG"));
  int open = 0;
  int most = 0;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(log).substr(std::min(log_offset_, log.size())), '\n')) {
    if (!absl::StrContains(line, kSubmissionSmtpd)) continue;
    if (absl::StrContains(line, "]: connect from ")) most = std::max(most, ++open);
    if (absl::StrContains(line, "]: disconnect from ")) open = std::max(0, open - 1);
  }
  return most;
}

}  // namespace mailroom::testing
