// The keyset page-token scheme: tokens round-trip their key, are refused (INVALID_ARGUMENT)
// when garbled, edited, truncated or used with another listing's filters; KeysetPage pages
// through a real table in both directions without skipping or repeating rows, also when rows
// are added between pages; page sizes are defaulted, capped and checked.
#include "common/sqlite/page_token.h"

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::sqlite {
namespace {

using ::mailroom::common::v1::PageRequest;
using ::mailroom::common::v1::PageResponse;
using ::testing::ElementsAre;
using ::testing::StartsWith;

const std::vector<Value> kKey = {int64_t{-1'700'000'000'000'000}, std::string("node/01H\n:s3\0x", 14)};

void ExpectRefused(const absl::StatusOr<std::vector<Value>>& decoded) {
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(decoded.status().message()), StartsWith("page.page_token: "));
}

TEST(PageTokenTest, RoundTripsItsKey) {
  const std::string token = EncodePageToken(kKey, "s=1;k=");
  EXPECT_FALSE(token.empty());
  EXPECT_EQ(token.find_first_not_of(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);  // safe in URLs and command lines
  absl::StatusOr<std::vector<Value>> decoded = DecodePageToken(token, "s=1;k=", 2);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, kKey);
  EXPECT_EQ(*DecodePageToken(EncodePageToken({}, ""), "", 0), std::vector<Value>{});
}

TEST(PageTokenTest, OnlyTheListingWithTheSameFiltersAcceptsIt) {
  const std::string token = EncodePageToken(kKey, "s=1;k=");
  ExpectRefused(DecodePageToken(token, "s=1,2;k=", 2));
  ExpectRefused(DecodePageToken(token, "", 2));
  ExpectRefused(DecodePageToken(token, "s=1;k=", 3));  // another listing's key shape
}

TEST(PageTokenTest, GarbageAndEditedTokensAreRefused) {
  ExpectRefused(DecodePageToken("not-a-token", "f", 2));
  ExpectRefused(DecodePageToken("garbage", "f", 2));
  ExpectRefused(DecodePageToken("12.abcdef0123456789", "f", 2));  // the PAN's old offset tokens
  ExpectRefused(DecodePageToken("!!!", "f", 2));
  const std::string token = EncodePageToken(kKey, "f");
  // Every single-character edit is detected.
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (size_t i = 0; i < token.size(); ++i) {
    for (char c : {'A', 'z', '0', '_'}) {
      if (token[i] == c) continue;
      std::string edited = token;
      edited[i] = c;
      EXPECT_FALSE(DecodePageToken(edited, "f", 2).ok()) << "position " << i << " → " << c;
    }
  }
  ExpectRefused(DecodePageToken(token.substr(0, token.size() - 1), "f", 2));
  ExpectRefused(DecodePageToken(token + "A", "f", 2));
  // A token forged from another key without the check.
  ExpectRefused(DecodePageToken(EncodePageToken({int64_t{5}}, "other"), "f", 1));
}

class KeysetPageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/page-", info->name());
    ASSERT_EQ(std::system(absl::StrCat("rm -rf '", dir, "' && mkdir -p '", dir, "'").c_str()), 0);
    DatabaseOptions options;
    options.store_name = "test store";
    absl::StatusOr<std::unique_ptr<Database>> db =
        Database::Open(absl::StrCat(dir, "/page.db"), options);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    // Sort times repeat, so the id breaks the ties.
    ASSERT_TRUE(db_->Exec("CREATE TABLE rows (id TEXT PRIMARY KEY, t INTEGER, color TEXT);"
                          "INSERT INTO rows VALUES ('a', 1, 'red'), ('b', 2, 'blue'), "
                          "('c', 2, 'red'), ('d', 2, 'red'), ('e', 3, 'blue'), ('f', 4, 'red'), "
                          "('g', 4, 'red')")
                    .ok());
  }

  // Every id, page by page; `between` runs before each page after the first.
  std::vector<std::vector<std::string>> Pages(SortOrder order, int size, const Where& where,
                                              const std::function<void()>& between = nullptr) {
    std::vector<std::vector<std::string>> pages;
    PageRequest request;
    request.set_page_size(size);
    for (int i = 0; i < 20; ++i) {
      if (i > 0 && between) between();
      absl::StatusOr<KeysetPage> page =
          KeysetPage::Start(request, "colors", {"t", "id"}, order);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      PageResponse response;
      std::vector<std::string> ids;
      const absl::Status status = page->Run(
          db_.get(), "id, color", "rows", where,
          [&](const Statement& row) {
            ids.push_back(row.Text(0));
            return absl::OkStatus();
          },
          &response);
      EXPECT_TRUE(status.ok()) << status;
      total_size_ = response.total_size();
      pages.push_back(ids);
      if (response.next_page_token().empty()) break;
      request.set_page_token(response.next_page_token());
    }
    return pages;
  }

  std::unique_ptr<Database> db_;
  int64_t total_size_ = -1;
};

TEST_F(KeysetPageTest, PagesInKeyOrderWithoutGapsOrRepeats) {
  EXPECT_THAT(Pages(SortOrder::kAscending, 3, Where()),
              ElementsAre(ElementsAre("a", "b", "c"), ElementsAre("d", "e", "f"),
                          ElementsAre("g")));
  EXPECT_EQ(total_size_, 7);
  EXPECT_THAT(Pages(SortOrder::kDescending, 3, Where()),
              ElementsAre(ElementsAre("g", "f", "e"), ElementsAre("d", "c", "b"),
                          ElementsAre("a")));
  // An exact multiple: no empty last page.
  Where red;
  red.Add("color = ?", {std::string("red")});
  EXPECT_THAT(Pages(SortOrder::kDescending, 5, red),
              ElementsAre(ElementsAre("g", "f", "d", "c", "a")));
  EXPECT_EQ(total_size_, 5);
  EXPECT_THAT(Pages(SortOrder::kAscending, 1000, Where()), ElementsAre(testing::SizeIs(7)));
}

TEST_F(KeysetPageTest, RowsAddedBetweenPagesDoNotShiftTheRest) {
  int added = 0;
  const std::vector<std::vector<std::string>> pages =
      Pages(SortOrder::kDescending, 2, Where(), [&] {
        // Newer rows (they sort first in this listing) arrive while the client pages.
        ASSERT_TRUE(db_->Exec(absl::StrCat("INSERT INTO rows VALUES ('new", added++,
                                           "', 100, 'red')"))
                        .ok());
      });
  std::vector<std::string> all;
  for (const auto& page : pages) all.insert(all.end(), page.begin(), page.end());
  EXPECT_THAT(all, ElementsAre("g", "f", "e", "d", "c", "b", "a"));
}

TEST_F(KeysetPageTest, PageSizesAreDefaultedCappedAndChecked) {
  PageRequest request;
  EXPECT_EQ(KeysetPage::Start(request, "", {"id"}, SortOrder::kAscending)->size(),
            kDefaultPageSize);
  request.set_page_size(5000);
  EXPECT_EQ(KeysetPage::Start(request, "", {"id"}, SortOrder::kAscending)->size(), kMaxPageSize);
  request.set_page_size(-1);
  absl::StatusOr<KeysetPage> negative =
      KeysetPage::Start(request, "", {"id"}, SortOrder::kAscending);
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(negative.status().message(), "page.page_size: must not be negative");
  request.set_page_size(2);
  request.set_page_token("garbage");
  EXPECT_EQ(KeysetPage::Start(request, "", {"id"}, SortOrder::kAscending).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(KeysetPageTest, AnErrorFromTheRowCallbackStopsTheListing) {
  PageRequest request;
  absl::StatusOr<KeysetPage> page = KeysetPage::Start(request, "", {"id"}, SortOrder::kAscending);
  ASSERT_TRUE(page.ok());
  PageResponse response;
  int rows = 0;
  const absl::Status status = page->Run(
      db_.get(), "id", "rows", Where(),
      [&](const Statement&) {
        ++rows;
        return absl::DataLossError("unreadable row");
      },
      &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(rows, 1);
}

}  // namespace
}  // namespace mailroom::sqlite
