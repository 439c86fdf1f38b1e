// The proxy rules shared by the token transport and the SMTP client: which hosts bypass the
// proxy, which no_proxy entries are valid, and how failures on the way through a proxy are
// named. Real libcurl against real sockets on loopback: a closed port (refused), a name that
// does not resolve, and a listener that never answers (RecordingListener). Answers of a real
// proxy (200, 403, 407, 401) are covered end to end with tinyproxy in
// tests/e2e/proxy_e2e_test.cc and tests/e2e/smtp_client_e2e_test.cc.
#include "common/rpc/curl_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/rpc/http_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/recording_listener.h"

namespace mailroom {
namespace {

namespace fc = ::mailroom::common::v1;
using ::testing::HasSubstr;
using ::testing::Not;

ProxyConfig Proxy(std::string url, std::vector<std::string> no_proxy = {}) {
  ProxyConfig proxy;
  proxy.url = std::move(url);
  proxy.no_proxy = std::move(no_proxy);
  return proxy;
}

// A loopback port nothing listens on.
int ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

// A token request (with a client secret in its body) through `proxy`.
absl::StatusOr<HttpResponse> PostThrough(const ProxyConfig& proxy, const std::string& url,
                                         absl::Duration timeout) {
  CurlHttpTransport::Options options;
  options.proxy = proxy;
  CurlHttpTransport transport(options);
  HttpRequest request;
  request.url = url;
  request.form_body = "client_id=x&client_secret=the-secret-value";
  request.timeout = timeout;
  return transport.PostForm(request);
}

fc::FailureCause CauseOf(const absl::Status& status) {
  return DiagnosisOf(status).value_or(Diagnosis()).cause();
}

TEST(CurlProxy, NoProxyMatchesHostsDomainsAddressesAndBlocks) {
  const ProxyConfig proxy = Proxy("http://proxy.contoso.com:3128",
                                  {"contoso.com", ".internal.example", "10.0.0.0/8", "::1",
                                   "192.168.1.7", "fd00::/8", "Mail.Example."});
  for (const char* host : {"contoso.com", "smtp.contoso.com", "SMTP.Contoso.COM.",
                           "a.b.internal.example", "internal.example", "10.1.2.3", "::1",
                           "[::1]", "192.168.1.7", "fd12::5", "mail.example"}) {
    EXPECT_TRUE(BypassesProxy(proxy, host)) << host;
  }
  for (const char* host : {"notcontoso.com", "contoso.com.evil.example", "smtp.office365.com",
                           "11.0.0.1", "192.168.1.70", "fe80::1", "example", "10.0.0.1.nip.io"}) {
    EXPECT_FALSE(BypassesProxy(proxy, host)) << host;
  }
  EXPECT_TRUE(BypassesProxy(Proxy("http://p:3128", {"*"}), "smtp.office365.com"));
  EXPECT_TRUE(BypassesProxy(Proxy(""), "smtp.office365.com"));  // no proxy at all
  EXPECT_FALSE(BypassesProxy(Proxy("http://p:3128"), "127.0.0.1"));  // loopback is not special
}

TEST(CurlProxy, NoProxyEntriesAreChecked) {
  for (const char* entry : {"*", "contoso.com", ".contoso.com", "localhost", "10.0.0.0/8",
                            "127.0.0.1", "::1", "fd00::/8", "smtp-1.contoso.com."}) {
    EXPECT_EQ(NoProxyEntryProblem(entry), "") << entry;
  }
  for (const char* entry : {"", ".", "a b", "contoso.com:443", "10.0.0.0/33", "10.0.0.0/",
                            "http://contoso.com", "*.contoso.com", "a..b", "10.0.0.0/x",
                            "contoso.com,other.com"}) {
    EXPECT_NE(NoProxyEntryProblem(entry), "") << entry;
  }
}

TEST(CurlProxy, AProxyThatRefusesConnectionsIsNamed) {
  const ProxyConfig proxy = Proxy(absl::StrCat("http://127.0.0.1:", ClosedPort()));
  absl::StatusOr<std::string> probe =
      ProbeProxyTunnel(proxy, "smtp.office365.com", 587, absl::Seconds(5));
  ASSERT_FALSE(probe.ok());
  EXPECT_EQ(CauseOf(probe.status()), fc::FAILURE_CAUSE_PROXY_CONNECTION_REFUSED);
  const Diagnosis diagnosis = *DiagnosisOf(probe.status());
  EXPECT_EQ(diagnosis.endpoint(), "smtp.office365.com:587");
  EXPECT_THAT(diagnosis.raw_reply(), HasSubstr(proxy.url));
  EXPECT_TRUE(diagnosis.retryable());
}

TEST(CurlProxy, AProxyNameThatDoesNotResolveIsUnreachable) {
  absl::StatusOr<std::string> probe = ProbeProxyTunnel(
      Proxy("http://proxy.mailroom-test.invalid:3128"), "smtp.office365.com", 587,
      absl::Seconds(10));
  ASSERT_FALSE(probe.ok());
  EXPECT_EQ(CauseOf(probe.status()), fc::FAILURE_CAUSE_PROXY_UNREACHABLE);
  EXPECT_THAT(DiagnosisOf(probe.status())->raw_reply(), HasSubstr("does not resolve"));
}

// A proxy that accepts the connection and never answers the CONNECT: named, and nothing but the
// CONNECT line (and the credentials it was configured with) ever reached it.
TEST(CurlProxy, AProxyThatNeverAnswersIsUnreachableAndSawOnlyTheConnect) {
  testing::RecordingListener silent;
  ASSERT_NE(silent.port(), 0);
  ProxyConfig proxy = Proxy(absl::StrCat("http://127.0.0.1:", silent.port()));
  proxy.credentials = "mailroom:pr0xy-pa55word";
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> probe =
      ProbeProxyTunnel(proxy, "smtp.office365.com", 587, absl::Seconds(1));
  ASSERT_FALSE(probe.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(CauseOf(probe.status()), fc::FAILURE_CAUSE_PROXY_UNREACHABLE);
  EXPECT_THAT(DiagnosisOf(probe.status())->raw_reply(), HasSubstr("did not answer CONNECT"));
  EXPECT_THAT(silent.received(), HasSubstr("CONNECT smtp.office365.com:587 HTTP/1.1"));
  EXPECT_THAT(silent.received(), HasSubstr("Proxy-Authorization: Basic "));

  // The token transport tunnels even plain http (loopback, tests): the proxy never sees the
  // request, so never the client secret in its body.
  absl::StatusOr<HttpResponse> response =
      PostThrough(proxy, "http://127.0.0.1:9/tenant/oauth2/v2.0/token", absl::Seconds(1));
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(TransportFailureOf(response.status()), TransportFailure::kProxy);
  EXPECT_EQ(CauseOf(response.status()), fc::FAILURE_CAUSE_PROXY_UNREACHABLE);
  EXPECT_THAT(silent.received(), HasSubstr("CONNECT 127.0.0.1:9 HTTP/1.1"));
  EXPECT_THAT(silent.received(), Not(HasSubstr("the-secret-value")));
  EXPECT_THAT(silent.received(), Not(HasSubstr("POST")));
}

TEST(CurlProxy, TheTokenTransportNamesARefusingProxy) {
  absl::StatusOr<HttpResponse> response =
      PostThrough(Proxy(absl::StrCat("http://127.0.0.1:", ClosedPort())),
                  "https://login.microsoftonline.com/tenant/oauth2/v2.0/token", absl::Seconds(5));
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(TransportFailureOf(response.status()), TransportFailure::kProxy);
  EXPECT_EQ(CauseOf(response.status()), fc::FAILURE_CAUSE_PROXY_CONNECTION_REFUSED);
  EXPECT_THAT(DiagnosisOf(response.status())->raw_reply(),
              HasSubstr("login.microsoftonline.com:443"));
}

TEST(CurlProxy, AHostInNoProxyIsReachedDirectly) {
  // The proxy does not exist; the host is listed, so the probe never tries it.
  absl::StatusOr<std::string> probe = ProbeProxyTunnel(
      Proxy(absl::StrCat("http://127.0.0.1:", ClosedPort()), {"office365.com"}),
      "smtp.office365.com", 587, absl::Seconds(2));
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_THAT(*probe, HasSubstr("direct"));
}

}  // namespace
}  // namespace mailroom
