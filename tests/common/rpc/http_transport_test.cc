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
                          "http://10.0.0.1", "http://localhost:port", "ftp://localhost"}) {
    EXPECT_FALSE(IsLoopbackHttpUrl(url)) << url;
  }
}

}  // namespace
}  // namespace mailroom
