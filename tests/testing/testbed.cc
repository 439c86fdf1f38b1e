#include "tests/testing/testbed.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/url_encode.h"
#include "common/rpc/http_transport.h"
#include "gtest/gtest.h"

namespace mailroom::testing {
namespace {

constexpr char kScript[] = "tests/e2e/testbed/testbed.sh";
// Postfix, Dovecot and smtp-sink live in /usr/sbin, which Bazel's test PATH lacks.
constexpr char kPathVariable[] =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string ShellQuote(absl::string_view value) {
  return absl::StrCat("'", absl::StrReplaceAll(value, {{"'", "'\\''"}}), "'");
}

// Runs `command` with sh; returns its exit code (128+N if killed by signal N). Its output,
// stdout and stderr together, goes to `output` if given.
int RunShell(const std::string& command, std::string* output) {
  FILE* pipe = popen(absl::StrCat(command, " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  std::string text;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) text.append(buffer, n);
  const int status = pclose(pipe);
  if (output != nullptr) *output = std::move(text);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// ---- Stopping live testbeds when the test process is killed (e.g. Bazel's timeout sends
// SIGTERM) or crashes. Plain arrays: they are read inside a signal handler.
constexpr int kMaxLive = 8;
char live_dirs[kMaxLive][256];
char script_path[4096];

void StopLiveTestbeds(int signal_number) {
  for (int i = 0; i < kMaxLive; ++i) {
    if (live_dirs[i][0] == '\0') continue;
    const pid_t pid = fork();
    if (pid == 0) {
      char path_variable[sizeof(kPathVariable)];
      std::memcpy(path_variable, kPathVariable, sizeof(kPathVariable));
      char* const argv[] = {const_cast<char*>("bash"), script_path, const_cast<char*>("stop"),
                            live_dirs[i], nullptr};
      char* const envp[] = {path_variable, nullptr};
      execve("/bin/bash", argv, envp);
      _exit(127);
    }
    if (pid > 0) waitpid(pid, nullptr, 0);
    live_dirs[i][0] = '\0';
  }
  signal(signal_number, SIG_DFL);
  raise(signal_number);
}

void RegisterLive(const std::string& dir) {
  static const bool installed = [] {
    const std::string script = TestbedRunfile(kScript);
    std::snprintf(script_path, sizeof(script_path), "%s", script.c_str());
    for (int signal_number : {SIGTERM, SIGINT, SIGHUP, SIGABRT, SIGSEGV, SIGBUS}) {
      signal(signal_number, StopLiveTestbeds);
    }
    return true;
  }();
  (void)installed;
  for (auto& slot : live_dirs) {
    if (slot[0] == '\0') {
      std::snprintf(slot, sizeof(slot), "%s", dir.c_str());
      return;
    }
  }
}

void UnregisterLive(const std::string& dir) {
  for (auto& slot : live_dirs) {
    if (dir == slot) slot[0] = '\0';
  }
}

bool AnyTestFailed() {
  const ::testing::UnitTest* unit_test = ::testing::UnitTest::GetInstance();
  return ::testing::Test::HasFailure() || unit_test->failed_test_count() > 0 ||
         unit_test->ad_hoc_test_result().Failed();
}

std::string ReadWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// The tail of a long script output, for error messages.
std::string Tail(const std::string& text, size_t max_chars = 6000) {
  return text.size() <= max_chars ? text : "..." + text.substr(text.size() - max_chars);
}

}  // namespace

std::string TestbedRunfile(const std::string& workspace_path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (srcdir == nullptr || workspace == nullptr) return workspace_path;
  return absl::StrCat(srcdir, "/", workspace, "/", workspace_path);
}

int UnusedLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

bool LoopbackPortOpen(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  const bool open = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(fd);
  return open;
}

absl::StatusOr<std::unique_ptr<Testbed>> Testbed::Start() {
  char dir_template[] = "/tmp/mr.XXXXXX";  // short: Dovecot's unix sockets live under it
  if (mkdtemp(dir_template) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", std::strerror(errno)));
  }
  // Postfix (user postfix) and the virtual delivery agent (uid 8) must reach into it.
  chmod(dir_template, 0755);
  std::unique_ptr<Testbed> testbed(new Testbed(dir_template));
  RegisterLive(testbed->dir_);
  std::string output;
  const int rc = testbed->RunScript({"start", testbed->dir_}, &output);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat("testbed.sh start ", testbed->dir_, " failed (exit ",
                                               rc, "):\n", Tail(output)));
  }
  std::ifstream env_file(absl::StrCat(testbed->dir_, "/testbed.env"));
  std::string line;
  while (std::getline(env_file, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t equals = line.find('=');
    if (equals == std::string::npos) continue;
    testbed->env_[line.substr(0, equals)] = line.substr(equals + 1);
  }
  if (testbed->Env("SMTP_PORT").empty() || testbed->Env("TOKEN_URL").empty()) {
    return absl::InternalError(absl::StrCat("testbed.env in ", testbed->dir_,
                                            " lacks SMTP_PORT or TOKEN_URL:\n", Tail(output)));
  }
  return testbed;
}

Testbed::~Testbed() {
  std::string output;
  const int rc = RunScript({"stop", dir_}, &output);
  UnregisterLive(dir_);
  if (rc != 0) {
    ADD_FAILURE() << "testbed.sh stop " << dir_ << " failed (exit " << rc << "):\n" << Tail(output);
  }
  if (std::getenv("MAILROOM_KEEP_TESTBED") != nullptr || AnyTestFailed() || rc != 0) {
    std::fprintf(stderr, "testbed files kept in %s\n", dir_.c_str());
    return;
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

int Testbed::RunScript(const std::vector<std::string>& args, std::string* output) const {
  std::vector<std::string> quoted;
  for (const std::string& arg : args) quoted.push_back(ShellQuote(arg));
  return RunShell(absl::StrCat("env ", kPathVariable, " bash ", ShellQuote(TestbedRunfile(kScript)),
                               " ", absl::StrJoin(quoted, " ")),
                  output);
}

std::string Testbed::Env(absl::string_view key) const {
  auto it = env_.find(std::string(key));
  return it == env_.end() ? "" : it->second;
}

int Testbed::EnvInt(absl::string_view key) const {
  int value = 0;
  return absl::SimpleAtoi(Env(key), &value) ? value : 0;
}

absl::StatusOr<std::string> Testbed::FetchToken(const std::string& client_id,
                                                const std::string& client_secret) const {
  CurlHttpTransport transport(CurlHttpTransport::Options{});
  HttpRequest request;
  request.url = Env("TOKEN_URL");
  request.form_body = absl::StrCat(
      "grant_type=client_credentials&client_id=", UrlEncode(client_id),
      "&client_secret=", UrlEncode(client_secret), "&scope=", UrlEncode(Env("SCOPE")));
  request.timeout = absl::Seconds(15);
  absl::StatusOr<HttpResponse> response = transport.PostForm(request);
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return absl::UnavailableError(
        absl::StrCat("token endpoint answered ", response->status, ": ", response->body));
  }
  // {"access_token":"<opaque>","expires_in":3600,...}: opaque tokens need no JSON unescaping.
  const std::string& body = response->body;
  size_t pos = body.find("\"access_token\"");
  if (pos != std::string::npos) pos = body.find('"', body.find(':', pos));
  const size_t end = pos == std::string::npos ? pos : body.find('"', pos + 1);
  if (end == std::string::npos) {
    return absl::UnavailableError(absl::StrCat("no access_token in: ", body));
  }
  return body.substr(pos + 1, end - pos - 1);
}

absl::StatusOr<std::string> Testbed::FetchToken() const {
  return FetchToken(Env("CLIENT_ID"), Env("CLIENT_SECRET"));
}

std::vector<std::string> Testbed::PoolMailboxes() const {
  return absl::StrSplit(Env("POOL_MAILBOXES"), ',', absl::SkipEmpty());
}

absl::Status Testbed::SetMailboxQuotaExceeded(const std::string& mailbox, bool exceeded) const {
  std::string output;
  const int rc = RunScript({"quota-fault-mailbox", dir_, mailbox, exceeded ? "on" : "off"}, &output);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("testbed.sh quota-fault-mailbox failed (exit ", rc, "):\n", Tail(output)));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> Testbed::RunScriptForPort(const std::vector<std::string>& args) const {
  std::string output;
  const int rc = RunScript(args, &output);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("testbed.sh ", args[0], " failed (exit ", rc, "):\n", Tail(output)));
  }
  // The last line is "PORT PID".
  std::vector<absl::string_view> lines =
      absl::StrSplit(absl::StripTrailingAsciiWhitespace(output), '\n');
  std::vector<absl::string_view> words = absl::StrSplit(lines.back(), ' ');
  int port = 0;
  if (words.size() != 2 || !absl::SimpleAtoi(words[0], &port)) {
    return absl::InternalError(
        absl::StrCat("unexpected output of testbed.sh ", args[0], ": ", output));
  }
  return port;
}

absl::StatusOr<int> Testbed::StartSink(const std::vector<std::string>& options) const {
  std::vector<std::string> args = {"sink", dir_, "0"};
  args.insert(args.end(), options.begin(), options.end());
  return RunScriptForPort(args);
}

absl::StatusOr<TestProxy> Testbed::StartProxy(const std::string& mode) const {
  absl::StatusOr<int> port = RunScriptForPort({"proxy", dir_, mode});
  if (!port.ok()) return port.status();
  TestProxy proxy;
  proxy.port = *port;
  const std::string base = absl::StrCat(dir_, "/proxy/", proxy.port);
  proxy.url = absl::StrCat(mode == "tls" ? "https" : "http", "://127.0.0.1:", proxy.port);
  proxy.log_path = absl::StrCat(base, ".log");
  if (mode == "auth") proxy.credentials_file = absl::StrCat(base, ".credentials");
  return proxy;
}

std::vector<std::string> Testbed::ProxyConnects(const TestProxy& proxy) {
  std::vector<std::string> targets;
  std::ifstream in(proxy.log_path);
  std::string line;
  while (std::getline(in, line)) {
    // "CONNECT   Dec 06 04:52:57.084 [19764]: Request (file descriptor 5): CONNECT 127.0.0.1:31539 HTTP/1.1"
    const size_t at = line.find("): CONNECT ");
    if (at == std::string::npos || line.find("Request (") == std::string::npos) continue;
    absl::string_view rest = absl::string_view(line).substr(at + 11);
    targets.emplace_back(rest.substr(0, rest.find(' ')));
  }
  return targets;
}

std::vector<std::string> Testbed::DeliveredTo(const std::string& recipient) const {
  std::vector<std::string> messages;
  for (DeliveredMessage& message : DeliveredWithTimes(recipient)) {
    messages.push_back(std::move(message.text));
  }
  return messages;
}

std::vector<DeliveredMessage> Testbed::DeliveredWithTimes(const std::string& recipient) const {
  std::vector<std::filesystem::path> files;
  for (const char* sub : {"new", "cur"}) {
    std::error_code error;
    for (const auto& entry :
         std::filesystem::directory_iterator(absl::StrCat(Env("MAILDIR"), "/", sub), error)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
  }
  // Maildir names start with the delivery time in seconds, then a per-second sequence.
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) {
    return std::make_pair(std::filesystem::last_write_time(a), a.filename()) <
           std::make_pair(std::filesystem::last_write_time(b), b.filename());
  });
  std::vector<DeliveredMessage> messages;
  for (const auto& file : files) {
    std::string message = ReadWholeFile(file);
    absl::string_view headers(message);
    headers = headers.substr(0, headers.find("\n\n"));
    for (absl::string_view line : absl::StrSplit(headers, '\n')) {
      if (!absl::StartsWithIgnoreCase(line, "Delivered-To:")) continue;
      if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(line.substr(13)), recipient)) {
        // stat's nanoseconds: file_time_type's epoch is unspecified in C++17.
        struct stat info {};
        const absl::Time delivered = stat(file.c_str(), &info) == 0
                                         ? absl::TimeFromTimespec(info.st_mtim)
                                         : absl::InfinitePast();
        messages.push_back({delivered, std::move(message)});
        break;
      }
    }
  }
  return messages;
}

std::vector<std::string> Testbed::WaitForDelivered(const std::string& recipient, size_t count,
                                                   absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<std::string> messages = DeliveredTo(recipient);
  while (messages.size() < count && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    messages = DeliveredTo(recipient);
  }
  return messages;
}

}  // namespace mailroom::testing
