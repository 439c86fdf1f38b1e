#include "common/rpc/http_transport.h"

#include <httplib.h>

#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/base/diagnosis.h"
#include "common/rpc/tls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_certs.h"

namespace mailroom {
namespace {

using ::testing::HasSubstr;

TEST(HttpTransport, LoopbackHttpIsExactlyLoopback) {
  for (const char* url : {"http://127.0.0.1", "http://127.0.0.1:8080", "http://localhost:3000/x",
                          "http://[::1]:99/tenant", "http://127.10.0.1/"}) {
    EXPECT_TRUE(IsLoopbackHttpUrl(url)) << url;
  }
  for (const char* url : {"https://127.0.0.1", "http://localhost.evil.example",
                          "http://127.0.0.1.nip.io", "http://127.0.0.1:80@evil.example",
                          "http://10.0.0.1", "http://localhost:port", "ftp://localhost",
                          "http://127.0.0.300", "http://127.0.0.1.5", "http://127.0.0",
                          "http://127.+1.0.1", "http://127.0.0.0001"}) {
    EXPECT_FALSE(IsLoopbackHttpUrl(url)) << url;
  }
}

// M2: plain http to anywhere but this host is refused by the transport itself, before any
// byte is sent, whatever the settings said when they were saved.
TEST(HttpTransport, PlainHttpBeyondLoopbackIsRefusedBeforeSending) {
  CurlHttpTransport transport(CurlHttpTransport::Options{});
  for (const char* url : {"http://login.attacker.example/t/oauth2/v2.0/token",
                          "http://127.0.0.300:1/token", "ftp://127.0.0.1/token"}) {
    HttpRequest request;
    request.url = url;
    request.form_body = "client_secret=s3cret";
    absl::StatusOr<HttpResponse> response = transport.PostForm(request);
    EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_NE(response.status().message().find("only https:// is allowed"), std::string::npos);
  }
}

}  // namespace
}  // namespace mailroom

namespace mailroom {
namespace {

// A real HTTPS server (cpp-httplib) with a certificate of a private CA that the transport
// is not told about: the token endpoint's PKIX case.
class HttpsServer {
 public:
  HttpsServer(const TlsFiles& files, const std::string& address)
      : server_(files.cert_file.c_str(), files.key_file.c_str()) {
    server_.Post("/tenant/oauth2/v2.0/token", [](const httplib::Request&, httplib::Response& r) {
      r.set_content(R"({"error":"invalid_client"})", "application/json");
      r.status = 401;
    });
    port_ = server_.bind_to_any_port(address);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~HttpsServer() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }

 private:
  httplib::SSLServer server_;
  int port_ = 0;
  std::thread thread_;
};

class HttpsTransportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new std::string(
        testing::MakeTestCerts("https-certs", "token endpoint test CA", "broker:broker"));
  }
  static void TearDownTestSuite() { delete certs_; }

  static absl::StatusOr<HttpResponse> Post(const std::string& url, const std::string& ca_pem) {
    CurlHttpTransport::Options options;
    options.ca_pem = ca_pem;
    CurlHttpTransport transport(options);
    HttpRequest request;
    request.url = url;
    request.form_body = "client_id=x&client_secret=never-sent-unverified";
    request.timeout = absl::Seconds(10);
    return transport.PostForm(request);
  }

  static std::string* certs_;
};

std::string* HttpsTransportTest::certs_ = nullptr;

// Item 4 of issue 11: as for STARTTLS, a chain that does not verify comes back with the chain
// the server presented, fetched over a second connection that sends nothing.
TEST_F(HttpsTransportTest, AnUntrustedChainComesWithTheChainTheServerPresented) {
  const TlsFiles files = testing::NodeTlsFiles(*certs_, "broker");
  HttpsServer server(files, "127.0.0.1");
  const std::string url =
      absl::StrCat("https://127.0.0.1:", server.port(), "/tenant/oauth2/v2.0/token");
  absl::StatusOr<HttpResponse> response = Post(url, "");
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(TransportFailureOf(response.status()), TransportFailure::kTlsUntrusted);
  const std::vector<CertificateSummary> chain = PresentedChainOf(response.status());
  ASSERT_GE(chain.size(), 1u);
  EXPECT_THAT(chain[0].subject, HasSubstr("broker"));
  EXPECT_THAT(chain[0].issuer, HasSubstr("token endpoint test CA"));
  EXPECT_THAT(chain[0].pem, HasSubstr("-----BEGIN CERTIFICATE-----"));
  EXPECT_THAT(chain[0].subject_alt_names, HasSubstr("127.0.0.1"));
  EXPECT_THAT(response.status().message(),
              HasSubstr("Certificates the server presented (leaf first):"));
  EXPECT_THAT(response.status().message(), HasSubstr("token endpoint test CA"));

  // With its CA trusted, the same server answers.
  absl::StatusOr<HttpResponse> trusted = Post(url, *ReadFileToString(files.ca_file));
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  EXPECT_EQ(trusted->status, 401);
}

TEST_F(HttpsTransportTest, ACertificateForAnotherNameIsAMismatchNotAnUntrustedChain) {
  const TlsFiles files = testing::NodeTlsFiles(*certs_, "broker");
  HttpsServer server(files, "127.0.0.2");  // the certificate names 127.0.0.1 and localhost
  absl::StatusOr<HttpResponse> response =
      Post(absl::StrCat("https://127.0.0.2:", server.port(), "/tenant/oauth2/v2.0/token"),
           *ReadFileToString(files.ca_file));
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(TransportFailureOf(response.status()), TransportFailure::kTlsNameMismatch);
  EXPECT_TRUE(PresentedChainOf(response.status()).empty());
}

TEST(HttpTransport, APresentedChainSurvivesTheStatus) {
  std::vector<CertificateSummary> chain(2);
  chain[0] = {"CN = leaf", "CN = issuing", "Jan 1", "Dec 31", "DNS:x", "-----BEGIN...\n"};
  chain[1] = {"CN = issuing", "CN = root", "", "", "", ""};
  const absl::Status status = WithPresentedChain(absl::UnavailableError("x"), chain);
  const std::vector<CertificateSummary> back = PresentedChainOf(status);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].subject, "CN = leaf");
  EXPECT_EQ(back[0].pem, "-----BEGIN...\n");
  EXPECT_EQ(back[1].issuer, "CN = root");
  EXPECT_TRUE(PresentedChainOf(absl::UnavailableError("x")).empty());
  EXPECT_TRUE(PresentedChainOf(WithPresentedChain(absl::UnavailableError("x"), {})).empty());
}

constexpr absl::Duration kHour = absl::Hours(1);

TEST(ParseRetryAfter, SecondsAndHttpDates) {
  const absl::Time now = absl::FromUnixSeconds(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(ParseRetryAfter("120", now, kHour), absl::Seconds(120));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now, kHour), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:50:07 GMT", now, kHour), absl::Seconds(30));
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:00:00 GMT", now, kHour), absl::ZeroDuration());
}

TEST(ParseRetryAfter, CappedAtTheCallersMaximum) {
  const absl::Time now = absl::FromUnixSeconds(784111777);
  EXPECT_EQ(ParseRetryAfter("999999999", now, kHour), kHour);
  EXPECT_EQ(ParseRetryAfter("4611686018427387904", now, absl::Minutes(10)), absl::Minutes(10));
  EXPECT_EQ(ParseRetryAfter("Mon, 07 Nov 1994 08:49:37 GMT", now, absl::Minutes(10)),
            absl::Minutes(10));
}

TEST(ParseRetryAfter, AbsentNegativeOrUnreadableLeavesTheDefaultToTheCaller) {
  const absl::Time now = absl::FromUnixSeconds(784111777);
  EXPECT_EQ(ParseRetryAfter("", now, kHour), absl::nullopt);
  EXPECT_EQ(ParseRetryAfter("-5", now, kHour), absl::nullopt);
  EXPECT_EQ(ParseRetryAfter("soon", now, kHour), absl::nullopt);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:50:07 CET", now, kHour), absl::nullopt);
}

}  // namespace
}  // namespace mailroom
