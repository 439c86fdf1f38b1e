#include "common/rpc/http_transport.h"

#include "gtest/gtest.h"

namespace mailroom {
namespace {

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
