#include "common/base/url_encode.h"

#include "gtest/gtest.h"

namespace mailroom {
namespace {

TEST(UrlEncode, KeepsUnreservedAndEncodesTheRest) {
  EXPECT_EQ(UrlEncode("a b+c/=~._-"), "a%20b%2Bc%2F%3D~._-");
  EXPECT_EQ(UrlEncode("AZaz09"), "AZaz09");
  EXPECT_EQ(UrlEncode("&?#%"), "%26%3F%23%25");
  EXPECT_EQ(UrlEncode(""), "");
  EXPECT_EQ(UrlEncode(std::string("a\0b", 3)), "a%00b");
  EXPECT_EQ(UrlEncode("\xc3\xa9\xff"), "%C3%A9%FF");  // bytes, upper-case hex
}

}  // namespace
}  // namespace mailroom
