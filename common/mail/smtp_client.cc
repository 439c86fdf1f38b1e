#include "common/mail/smtp_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/types/optional.h"
#include "common/base/logging.h"
#include "common/base/redactor.h"
#include "common/base/url_encode.h"
#include "common/mail/smtp_dialogue.h"

namespace mailroom {
namespace smtp_internal {
namespace {

namespace fc = ::mailroom::common::v1;

void EnsureCurlInitialized() {
  static const bool initialized = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)initialized;
}

}  // namespace

struct CurlHandle {
  CURL* curl = nullptr;
  curl_slist* connect_to = nullptr;

  CurlHandle() = default;
  CurlHandle(const CurlHandle&) = delete;
  CurlHandle& operator=(const CurlHandle&) = delete;
  // Cleaning up the handle closes its connection, with QUIT if it is still open.
  ~CurlHandle() {
    if (curl != nullptr) curl_easy_cleanup(curl);
    curl_slist_free_all(connect_to);
  }
};

namespace {

int OnCurlDebug(CURL* /*curl*/, curl_infotype type, char* data, size_t size, void* recorder) {
  static_cast<Recorder*>(recorder)->OnDebug(type, absl::string_view(data, size));
  return 0;
}

size_t DiscardOutput(char* /*data*/, size_t size, size_t count, void* /*unused*/) {
  return size * count;
}

struct UploadSource {
  const std::string* bytes = nullptr;
  size_t offset = 0;
};

size_t ReadMessage(char* buffer, size_t size, size_t count, void* source_ptr) {
  auto* source = static_cast<UploadSource*>(source_ptr);
  const size_t n = std::min(size * count, source->bytes->size() - source->offset);
  std::memcpy(buffer, source->bytes->data() + source->offset, n);
  source->offset += n;
  return n;
}

long Seconds(absl::Duration duration) {
  return static_cast<long>(absl::ToInt64Seconds(absl::Ceil(duration, absl::Seconds(1))));
}

long Millis(absl::Duration duration) {
  return static_cast<long>(absl::ToInt64Milliseconds(duration));
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::FailedPreconditionError(absl::StrCat("cannot read ", path));
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// A diagnosis of an untrusted chain whose fix names the SMTP server's trust store.
Diagnosis UntrustedChain(absl::string_view raw) {
  Diagnosis diagnosis = MakeDiagnosis(fc::FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN, raw);
  diagnosis.set_fix(UntrustedChainFix("smtp_trust_store"));
  return diagnosis;
}

absl::Status TrustError(absl::string_view message) {
  return DiagnosedError(UntrustedChain(message), message);
}

// The trust anchors: libcurl's defaults (the system store) unless the endpoint names its
// own, then exactly those plus, if asked, the system bundle.
absl::Status ConfigureTrust(CURL* curl, const SmtpEndpoint& endpoint) {
  if (endpoint.ca_file.empty() && endpoint.ca_pem.empty()) {
    if (!endpoint.use_system_roots) {
      return TrustError("no trust anchors: set ca_file or ca_pem, or use the system roots");
    }
    return absl::OkStatus();
  }
  std::string bundle = endpoint.ca_pem;
  if (!endpoint.ca_file.empty()) {
    absl::StatusOr<std::string> file = ReadFile(endpoint.ca_file);
    if (!file.ok()) return TrustError(file.status().message());
    absl::StrAppend(&bundle, "\n", *file);
  }
  if (endpoint.use_system_roots) {
    absl::StrAppend(&bundle, "\n", SystemCaBundle(curl));
  } else {
    curl_easy_setopt(curl, CURLOPT_CAINFO, nullptr);
    curl_easy_setopt(curl, CURLOPT_CAPATH, nullptr);
  }
  curl_blob blob{bundle.data(), bundle.size(), CURL_BLOB_COPY};
  if (curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &blob) != CURLE_OK) {
    return TrustError("libcurl refused the CA bundle");
  }
  return absl::OkStatus();
}

// A handle configured for `endpoint`, without credentials (EnsureHandle adds them; the
// unverified chain probe never has any).
absl::StatusOr<std::unique_ptr<CurlHandle>> NewHandle(const SmtpEndpoint& endpoint,
                                                      Recorder* recorder) {
  EnsureCurlInitialized();
  auto handle = std::make_unique<CurlHandle>();
  handle->curl = curl_easy_init();
  if (handle->curl == nullptr) return absl::InternalError("curl_easy_init failed");
  CURL* curl = handle->curl;
  std::string url = absl::StrCat("smtp://", HostForUrl(endpoint.host), ":", endpoint.port, "/");
  if (!endpoint.ehlo_name.empty()) {
    absl::StrAppend(&url, UrlEncode(endpoint.ehlo_name));
  }
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp");
  ApplyProxy(curl, endpoint.proxy, endpoint.host);  // none from the environment either way
  if (!endpoint.connect_address.empty()) {
    handle->connect_to = curl_slist_append(
        nullptr, absl::StrCat(HostForUrl(endpoint.host), ":", endpoint.port, ":",
                              HostForUrl(endpoint.connect_address), ":", endpoint.port)
                     .c_str());
    curl_easy_setopt(curl, CURLOPT_CONNECT_TO, handle->connect_to);
  }
  // STARTTLS is required: libcurl fails with CURLE_USE_SSL_FAILED rather than go on (and
  // authenticate) in plaintext.
  curl_easy_setopt(curl, CURLOPT_USE_SSL,
                   endpoint.allow_plaintext_for_tests ? static_cast<long>(CURLUSESSL_NONE)
                                                      : static_cast<long>(CURLUSESSL_ALL));
  curl_easy_setopt(curl, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(curl, CURLOPT_CERTINFO, 1L);
  absl::Status trust = ConfigureTrust(curl, endpoint);
  if (!trust.ok()) return trust;
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, Millis(endpoint.connect_timeout));
  curl_easy_setopt(curl, CURLOPT_SERVER_RESPONSE_TIMEOUT,
                   std::max(1L, Seconds(endpoint.reply_timeout)));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, std::max(1L, Seconds(endpoint.reply_timeout)));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, Millis(endpoint.operation_timeout));
  curl_easy_setopt(curl, CURLOPT_MAXLIFETIME_CONN, Seconds(endpoint.max_connection_age));
  curl_easy_setopt(curl, CURLOPT_MAXAGE_CONN, std::max(1L, Seconds(endpoint.max_idle)));
  // One connection per session: a new one (new token, old age) closes the previous one.
  curl_easy_setopt(curl, CURLOPT_MAXCONNECTS, 1L);
  curl_easy_setopt(curl, CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, DiscardOutput);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, recorder->error_buffer());
  curl_easy_setopt(curl, CURLOPT_DEBUGFUNCTION, OnCurlDebug);
  curl_easy_setopt(curl, CURLOPT_DEBUGDATA, recorder);
  curl_easy_setopt(curl, CURLOPT_VERBOSE, 1L);  // the debug callback only runs with it
  return handle;
}

// Runs a NOOP transaction: libcurl connects, greets, STARTTLSes and authenticates first,
// then leaves the connection open for the next transfer on the handle. (CURLOPT_CONNECT_ONLY
// would stop after AUTH too, but libcurl never reuses a connect-only connection for a later
// transfer, nor sends QUIT on it.)
CURLcode PerformNoop(CURL* curl) {
  curl_easy_setopt(curl, CURLOPT_UPLOAD, 0L);
  curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, nullptr);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "NOOP");
  curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  const CURLcode code = curl_easy_perform(curl);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, nullptr);
  curl_easy_setopt(curl, CURLOPT_NOBODY, 0L);
  return code;
}

absl::Duration InfoDuration(CURL* curl, CURLINFO info) {
  curl_off_t micros = 0;
  if (curl_easy_getinfo(curl, info, &micros) != CURLE_OK) return absl::ZeroDuration();
  return absl::Microseconds(micros);
}

bool OffersXoauth2(const SmtpReply& ehlo) {
  for (absl::string_view line : absl::StrSplit(ehlo.text, '\n')) {
    if (!absl::StartsWithIgnoreCase(line, "AUTH")) continue;
    for (absl::string_view word : absl::StrSplit(line.substr(4), absl::ByAnyChar(" ="))) {
      if (absl::EqualsIgnoreCase(word, "XOAUTH2")) return true;
    }
  }
  return false;
}

std::string AuthCapability(const SmtpReply& ehlo) {
  for (absl::string_view line : absl::StrSplit(ehlo.text, '\n')) {
    if (absl::StartsWithIgnoreCase(line, "AUTH")) return std::string(line);
  }
  return "no AUTH";
}

// A 334 challenge after a failed XOAUTH2 response carries base64 JSON (RFC 7628 style,
// e.g. {"status":"401","schemes":"bearer","scope":"..."}): shown decoded beside the raw line.
std::string WithDecodedChallenge(const SmtpReply& reply) {
  std::string decoded;
  if (reply.code != 334 ||
      !absl::Base64Unescape(absl::StripAsciiWhitespace(reply.text), &decoded)) {
    return reply.raw;
  }
  for (char c : decoded) {
    if (!absl::ascii_isprint(static_cast<unsigned char>(c))) return reply.raw;
  }
  return absl::StrCat(reply.raw, "\n(decoded: ", decoded, ")");
}

absl::string_view FirstLine(absl::string_view text) { return text.substr(0, text.find('\n')); }

struct Failure {
  Diagnosis diagnosis;
  SmtpReply reply;     // the failing reply; code 0 if none
  std::string detail;  // for the status message
};

Failure Classified(fc::FailureCause cause, std::string raw, std::string detail) {
  Failure failure;
  failure.diagnosis = MakeDiagnosis(cause, raw);
  failure.detail = std::move(detail);
  return failure;
}

// The cause libcurl's result tells when the server said nothing that does (UNKNOWN for the
// rest); sets `verify_result` to OpenSSL's verdict on the server's certificate when it was
// refused.
fc::FailureCause CurlFailureCause(CURLcode code, CURL* curl, long* verify_result) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
      return fc::FAILURE_CAUSE_DNS_RESOLUTION_FAILED;
    case CURLE_COULDNT_CONNECT:
      return fc::FAILURE_CAUSE_CONNECTION_REFUSED;
    case CURLE_OPERATION_TIMEDOUT:
      // A timeout once the TCP connection stood is a lost connection, not a connect timeout.
      return InfoDuration(curl, CURLINFO_CONNECT_TIME_T) > absl::ZeroDuration()
                 ? fc::FAILURE_CAUSE_CONNECTION_LOST
                 : fc::FAILURE_CAUSE_CONNECT_TIMEOUT;
    case CURLE_PEER_FAILED_VERIFICATION:
      return HostNameMismatch(curl, verify_result) ? fc::FAILURE_CAUSE_CERTIFICATE_NAME_MISMATCH
                                                   : fc::FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN;
    case CURLE_SSL_CACERT_BADFILE:
      return fc::FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN;
    case CURLE_USE_SSL_FAILED:
      return fc::FAILURE_CAUSE_STARTTLS_UNAVAILABLE;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return fc::FAILURE_CAUSE_TLS_HANDSHAKE_FAILED;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
      return fc::FAILURE_CAUSE_CONNECTION_LOST;
    default:
      return fc::FAILURE_CAUSE_UNKNOWN;
  }
}

// Classifies a failed transfer from the dialogue first (the server's reply codes), then
// from libcurl's result.
Failure ClassifyFailure(CURLcode code, CURL* curl, const Recorder& recorder, bool token_set,
                        const ProxyConfig* proxy, absl::string_view target) {
  const std::string curl_error =
      recorder.error().empty() ? curl_easy_strerror(code) : recorder.error();
  const absl::string_view host = target.substr(0, target.rfind(':'));
  Failure failure;
  // Nothing was heard from the SMTP server: the failure may be the proxy's.
  if (proxy != nullptr && recorder.exchanges().empty()) {
    absl::optional<Diagnosis> at_proxy =
        DiagnoseProxyFailure(curl, code, *proxy, target, curl_error);
    if (at_proxy.has_value()) {
      failure.diagnosis = *std::move(at_proxy);
      // The proxy could not reach the server (502/504): the seed's "Connection to <host>".
      NameConnectHost(host, &failure.diagnosis);
      failure.detail = failure.diagnosis.raw_reply();
      failure.diagnosis.add_codes(absl::StrCat("CURLE_", static_cast<int>(code)));
      return failure;
    }
  }
  const Exchange* ehlo = recorder.EhloOverTls();
  const Exchange* failing = recorder.FailingExchange();
  if (token_set && ehlo != nullptr && !recorder.AuthSent() && !OffersXoauth2(ehlo->reply) &&
      (code == CURLE_LOGIN_DENIED || failing != nullptr)) {
    // With AUTH offered but not XOAUTH2 libcurl stops (LOGIN_DENIED); with no AUTH at all it
    // goes on unauthenticated, and MAIL FROM is refused (530). Either way, the cause is this.
    failure = Classified(fc::FAILURE_CAUSE_XOAUTH2_UNAVAILABLE, ehlo->reply.raw,
                         absl::StrCat("the server offers ", AuthCapability(ehlo->reply)));
    failure.reply = failing != nullptr ? failing->reply : ehlo->reply;
    failure.diagnosis.set_smtp_code(failure.reply.code);
  } else if (failing != nullptr) {
    failure.reply = failing->reply;
    failure.diagnosis = ClassifySmtpReply(failing->reply, failing->stage);
    failure.detail =
        absl::StrCat(SmtpStageName(failing->stage), ": ", FirstLine(failing->reply.raw));
  } else if (code == CURLE_LOGIN_DENIED) {
    // libcurl 7.88 gives up when XOAUTH2 is answered with a 334 error challenge (instead of
    // sending the empty response that would draw the final 535): the token was refused.
    const Exchange* auth = recorder.Find(SmtpStage::kAuth, /*last=*/true);
    if (auth != nullptr && auth->reply.code == 334) {
      failure =
          Classified(fc::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED, WithDecodedChallenge(auth->reply),
                     absl::StrCat("AUTH: ", FirstLine(auth->reply.raw)));
      failure.reply = auth->reply;
      failure.diagnosis.set_smtp_code(auth->reply.code);
    } else {
      failure = Classified(fc::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED, curl_error, curl_error);
    }
  } else {
    long verify_result = 0;
    const fc::FailureCause cause = CurlFailureCause(code, curl, &verify_result);
    failure = Classified(cause, curl_error, curl_error);
    NameConnectHost(host, &failure.diagnosis);
    if (cause == fc::FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN) {
      failure.diagnosis = UntrustedChain(curl_error);
    }
    // Codes are machine words without spaces (the MnT refuses an alarm whose diagnosis has
    // a code with one).
    if (verify_result > 1) failure.diagnosis.add_codes(absl::StrCat("X509_V_ERR_", verify_result));
  }
  failure.diagnosis.add_codes(absl::StrCat("CURLE_", static_cast<int>(code)));
  return failure;
}

}  // namespace
}  // namespace smtp_internal

using smtp_internal::ClassifyFailure;
using smtp_internal::CurlHandle;
using smtp_internal::Exchange;
using smtp_internal::Failure;
using smtp_internal::Recorder;
namespace fc = ::mailroom::common::v1;

SmtpSession::SmtpSession(SmtpEndpoint endpoint, std::string username)
    : endpoint_(std::move(endpoint)),
      endpoint_name_(
          absl::StrCat("smtp://", HostForUrl(endpoint_.host), ":", endpoint_.port)),
      proxy_(BypassesProxy(endpoint_.proxy, endpoint_.host) ? nullptr : &endpoint_.proxy),
      username_(std::move(username)),
      recorder_(std::make_unique<Recorder>(endpoint_name_)) {}

SmtpSession::~SmtpSession() { Close(); }

void SmtpSession::SetBearerToken(std::string token) {
  if (token == token_) return;
  // Before anything could print it (libcurl's debug output, the transcript, a log line).
  if (!token.empty()) Redactor::Global().AddShortLivedSecret(token);
  Close();  // a connection authenticated with the old token is of no further use
  token_ = std::move(token);
}

namespace {

// Reads (and drops) until the peer closes `socket`, an error, or `limit`.
void WaitForServerClose(int socket, absl::Duration limit) {
  const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(limit);
  char discard[4096];
  while (true) {
    const ssize_t n = recv(socket, discard, sizeof discard, MSG_DONTWAIT);
    if (n == 0) return;  // the server closed its end
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return;
    if (n > 0) continue;  // the TLS close_notify, or a late reply: discarded
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    pollfd readable{socket, POLLIN, 0};
    if (poll(&readable, 1, static_cast<int>(left.count())) == 0) return;
  }
}

}  // namespace

void SmtpSession::Close() {
  if (handle_ == nullptr) return;
  // libcurl closes its end as soon as QUIT's 221 arrives; the server ends the session a moment
  // later (Postfix logs "disconnect" and its anvil count drops then). A connection slot released,
  // or a new connection opened, in between is one connection too many at a server that counts
  // them (Exchange: 3 per mailbox). So a duplicate of the socket is kept until the server has
  // closed its end.
  curl_socket_t curl_socket = CURL_SOCKET_BAD;
  int watch = -1;
  if (curl_easy_getinfo(handle_->curl, CURLINFO_ACTIVESOCKET, &curl_socket) == CURLE_OK &&
      curl_socket != CURL_SOCKET_BAD) {
    watch = fcntl(curl_socket, F_DUPFD_CLOEXEC, 0);
  }
  handle_.reset();  // QUIT and its reply, if the connection is still open
  if (watch < 0) return;
  // libcurl's close no longer sends our FIN while the duplicate is open.
  shutdown(watch, SHUT_WR);
  WaitForServerClose(watch, kServerCloseWait);
  close(watch);
}

std::string SmtpSession::Target() const {
  return absl::StrCat(HostForUrl(endpoint_.host), ":", endpoint_.port);
}

std::vector<std::string> SmtpSession::Transcript() const { return recorder_->transcript(); }

absl::Status SmtpSession::CheckPlaintextPolicy() const {
  if (endpoint_.allow_plaintext_for_tests && !token_.empty()) {
    const char kMessage[] =
        "allow_plaintext_for_tests is set and a bearer token is held: refusing, a token is "
        "never sent without TLS";
    return DiagnosedError(MakeDiagnosis(fc::FAILURE_CAUSE_STARTTLS_UNAVAILABLE, kMessage),
                          kMessage);
  }
  return absl::OkStatus();
}

absl::Status SmtpSession::EnsureHandle() {
  if (handle_ != nullptr) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<CurlHandle>> handle =
      smtp_internal::NewHandle(endpoint_, recorder_.get());
  if (!handle.ok()) return handle.status();
  CURL* curl = (*handle)->curl;
  if (!token_.empty()) {
    curl_easy_setopt(curl, CURLOPT_USERNAME, username_.c_str());
    curl_easy_setopt(curl, CURLOPT_XOAUTH2_BEARER, token_.c_str());
    curl_easy_setopt(curl, CURLOPT_LOGIN_OPTIONS, "AUTH=XOAUTH2");
    curl_easy_setopt(curl, CURLOPT_SASL_IR, 1L);
  }
  handle_ = std::move(*handle);
  return absl::OkStatus();
}

std::vector<CertificateSummary> SmtpSession::FetchPresentedChain() {
  Recorder probe(endpoint_name_);
  absl::StatusOr<std::unique_ptr<CurlHandle>> handle = smtp_internal::NewHandle(endpoint_, &probe);
  if (!handle.ok()) return {};
  CURL* curl = (*handle)->curl;
  // This connection is not verified: it never carries credentials (NewHandle sets none).
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  smtp_internal::PerformNoop(curl);
  std::vector<CertificateSummary> chain = CertificatesOf(curl);
  recorder_->AddLine(
      "* Listing the server's certificate chain over a second connection, without "
      "verification and without credentials:");
  for (const std::string& line : probe.transcript()) recorder_->AddLine(line);
  return chain;
}

absl::StatusOr<ConnectReport> SmtpSession::Connect() {
  last_connect_ = ConnectReport();
  last_connect_.endpoint = endpoint_name_;
  if (proxy_ != nullptr) last_connect_.proxy = proxy_->url;
  recorder_->Reset();
  absl::Status ready = CheckPlaintextPolicy();
  Close();
  if (ready.ok()) ready = EnsureHandle();
  if (!ready.ok()) {
    absl::optional<Diagnosis> diagnosis = DiagnosisOf(ready);
    if (diagnosis.has_value()) {
      diagnosis->set_endpoint(endpoint_name_);
      ready = WithDiagnosis(ready, *diagnosis);
    }
    return ready;
  }
  CURL* curl = handle_->curl;
  const CURLcode code = smtp_internal::PerformNoop(curl);

  ConnectReport& report = last_connect_;
  report.tcp_connect = smtp_internal::InfoDuration(curl, CURLINFO_CONNECT_TIME_T);
  const absl::Duration app_connect = smtp_internal::InfoDuration(curl, CURLINFO_APPCONNECT_TIME_T);
  if (app_connect > report.tcp_connect) report.tls = app_connect - report.tcp_connect;
  report.auth = recorder_->AuthDuration();
  report.total = smtp_internal::InfoDuration(curl, CURLINFO_TOTAL_TIME_T);
  if (const Exchange* greeting = recorder_->Find(SmtpStage::kGreeting, /*last=*/false)) {
    report.greeting = greeting->reply;
  }
  if (const Exchange* ehlo = recorder_->Find(SmtpStage::kEhlo, /*last=*/true)) {
    report.ehlo = ehlo->reply;
  }
  if (const Exchange* auth = recorder_->Find(SmtpStage::kAuth, /*last=*/true)) {
    report.auth_reply = auth->reply;
  }
  report.certificates = CertificatesOf(curl);
  report.proxy_reply = recorder_->proxy_reply();

  absl::optional<Failure> failure;
  if (code != CURLE_OK) {
    failure = ClassifyFailure(code, curl, *recorder_, !token_.empty(), proxy_, Target());
  } else if (!token_.empty() && !recorder_->AuthSent()) {
    // The server offered no AUTH at all and libcurl went on without: the session is useless.
    failure = smtp_internal::Classified(
        fc::FAILURE_CAUSE_XOAUTH2_UNAVAILABLE, report.ehlo.raw,
        absl::StrCat("the server offers ", smtp_internal::AuthCapability(report.ehlo)));
  }
  if (failure.has_value()) {
    Close();
    if (failure->diagnosis.cause() == fc::FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN &&
        !endpoint_.allow_plaintext_for_tests) {
      report.certificates = FetchPresentedChain();
      if (!report.certificates.empty()) {
        SetRawReply(&failure->diagnosis,
                    absl::StrCat(failure->diagnosis.raw_reply(), "\n",
                                 FormatChain(report.certificates)));
      }
    }
    failure->diagnosis.set_endpoint(endpoint_name_);
    report.transcript = Transcript();
    absl::Status status = DiagnosedError(failure->diagnosis, failure->detail);
    MR_LOG(kDebug, kLogSmtp) << endpoint_name_ << " connect failed: " << status.message();
    return status;
  }
  report.transcript = Transcript();
  MR_LOG(kDebug, kLogSmtp) << endpoint_name_ << " connected: tcp "
                           << absl::FormatDuration(report.tcp_connect) << ", tls "
                           << absl::FormatDuration(report.tls) << ", auth "
                           << absl::FormatDuration(report.auth) << ", total "
                           << absl::FormatDuration(report.total);
  return report;
}

namespace {

// Why an envelope cannot be sent as given; empty if it can.
std::string EnvelopeProblem(const std::string& from, const std::vector<std::string>& recipients) {
  auto bad = [](const std::string& address) {
    return address.find_first_of("\r\n<>\0 ", 0, 6) != std::string::npos;
  };
  if (bad(from)) return "the envelope sender contains CR, LF, space, NUL or angle brackets";
  if (recipients.empty()) return "no recipients";
  for (const std::string& recipient : recipients) {
    if (recipient.empty() || bad(recipient)) {
      return absl::StrCat("invalid recipient address \"", absl::CEscape(recipient), "\"");
    }
  }
  return "";
}

}  // namespace

SendResult SmtpSession::Send(const std::string& envelope_from,
                             const std::vector<std::string>& recipients,
                             const std::string& rfc5322_bytes, absl::Duration time_limit) {
  recorder_->Reset();
  SendResult result;
  for (const std::string& recipient : recipients) {
    result.recipients.push_back(RecipientResult{recipient, false, SmtpReply()});
  }
  auto fail_early = [&](const absl::Status& status) {
    absl::optional<Diagnosis> diagnosis = DiagnosisOf(status);
    result.diagnosis = diagnosis.has_value()
                           ? *diagnosis
                           : MakeDiagnosis(fc::FAILURE_CAUSE_UNKNOWN, status.message());
    result.diagnosis.set_endpoint(endpoint_name_);
    result.outcome = OutcomeOf(result.diagnosis);
    MR_LOG(kDebug, kLogSmtp) << endpoint_name_ << " message not sent: " << status.message();
    return result;
  };
  const std::string problem = EnvelopeProblem(envelope_from, recipients);
  if (!problem.empty()) {
    // A caller's bug (the outbox validates addresses when it queues), never worth a retry.
    return fail_early(absl::InvalidArgumentError(problem));
  }
  if (absl::Status ready = CheckPlaintextPolicy(); !ready.ok()) return fail_early(ready);
  if (absl::Status ready = EnsureHandle(); !ready.ok()) return fail_early(ready);

  CURL* curl = handle_->curl;
  absl::Duration limit = endpoint_.operation_timeout > absl::ZeroDuration()
                             ? endpoint_.operation_timeout
                             : absl::InfiniteDuration();
  limit = std::min(limit, time_limit);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   limit == absl::InfiniteDuration() ? 0L : std::max(1L, smtp_internal::Millis(limit)));
  const std::string from = absl::StrCat("<", envelope_from, ">");
  curl_slist* rcpt = nullptr;
  for (const std::string& recipient : recipients) {
    rcpt = curl_slist_append(rcpt, absl::StrCat("<", recipient, ">").c_str());
  }
  smtp_internal::UploadSource source{&rfc5322_bytes, 0};
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, nullptr);
  curl_easy_setopt(curl, CURLOPT_NOBODY, 0L);
  curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
  curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, smtp_internal::ReadMessage);
  curl_easy_setopt(curl, CURLOPT_READDATA, &source);
  curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(rfc5322_bytes.size()));
  const CURLcode code = curl_easy_perform(curl);
  curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, nullptr);
  curl_easy_setopt(curl, CURLOPT_READDATA, nullptr);
  curl_easy_setopt(curl, CURLOPT_UPLOAD, 0L);
  curl_slist_free_all(rcpt);

  long connects = 0;
  curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
  result.new_connection = connects > 0;
  result.duration = smtp_internal::InfoDuration(curl, CURLINFO_TOTAL_TIME_T);
  size_t next_recipient = 0;
  const Exchange* final_reply = nullptr;
  for (const Exchange& exchange : recorder_->exchanges()) {
    if (exchange.stage == SmtpStage::kRcptTo && next_recipient < result.recipients.size()) {
      RecipientResult& recipient = result.recipients[next_recipient++];
      recipient.reply = exchange.reply;
      recipient.accepted = exchange.complete && exchange.reply.code / 100 == 2;
    }
    if (exchange.stage == SmtpStage::kData && exchange.command == "." && exchange.complete) {
      final_reply = &exchange;
    }
  }

  if (code == CURLE_OK) {
    result.ok = true;
    result.outcome = DeliveryOutcome::kDelivered;
    if (final_reply != nullptr) result.reply = final_reply->reply;
    if (!token_.empty() && result.new_connection && !recorder_->AuthSent()) {
      MR_LOG(kWarn, kLogSmtp) << endpoint_name_
                              << " offers no AUTH and accepted the message unauthenticated";
    }
    MR_LOG(kDebug, kLogSmtp) << endpoint_name_ << " message accepted ("
                             << (result.new_connection ? "new connection" : "reused connection")
                             << ", " << absl::FormatDuration(result.duration)
                             << "): " << smtp_internal::FirstLine(result.reply.raw);
    return result;
  }
  Failure failure = ClassifyFailure(code, curl, *recorder_, !token_.empty(), proxy_, Target());
  failure.diagnosis.set_endpoint(endpoint_name_);
  result.reply = failure.reply;
  result.diagnosis = failure.diagnosis;
  result.outcome = OutcomeOf(result.diagnosis);
  MR_LOG(kDebug, kLogSmtp) << endpoint_name_ << " message not sent ("
                           << DeliveryOutcomeName(result.outcome)
                           << "): " << result.diagnosis.title() << ": " << failure.detail;
  return result;
}

}  // namespace mailroom
