#include "common/base/enum_names.h"

#include <iterator>

#include "gtest/gtest.h"

namespace mailroom {
namespace {

enum class Color { kRed, kGreen, kBlue };

constexpr absl::string_view kColorNames[] = {"red", "green", "blue"};
static_assert(std::size(kColorNames) == EnumCount(Color::kBlue));

TEST(EnumNameTest, NamesEachEnumeratorByItsValue) {
  EXPECT_EQ(EnumName(Color::kRed, kColorNames, "?"), "red");
  EXPECT_EQ(EnumName(Color::kGreen, kColorNames, "?"), "green");
  EXPECT_EQ(EnumName(Color::kBlue, kColorNames, "?"), "blue");
}

TEST(EnumNameTest, AValueOutsideTheTableGetsTheFallback) {
  EXPECT_EQ(EnumName(static_cast<Color>(3), kColorNames, "?"), "?");
  EXPECT_EQ(EnumName(static_cast<Color>(-1), kColorNames, "?"), "?");
}

TEST(EnumLookupTest, MapsEachEnumeratorToItsEntry) {
  static constexpr int kWavelengths[] = {700, 530, 470};
  EXPECT_EQ(EnumLookup(Color::kGreen, kWavelengths, 0), 530);
  EXPECT_EQ(EnumLookup(static_cast<Color>(7), kWavelengths, 0), 0);
}

}  // namespace
}  // namespace mailroom
