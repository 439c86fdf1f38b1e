// Provides the one paging scheme for `common.v1.PageRequest` listings over SQLite: keyset
// paging. A listing is ordered by a sort key (SQL expressions, together unique per row, never
// NULL, all in one direction); a page token carries the key of the last row returned, and the
// next page starts strictly after it. Unlike offsets, a row inserted or deleted while a client
// pages does not shift the rows after it (nothing is skipped or shown twice), and a page costs
// the same wherever it is.
//
// Token: web-safe base64 (no padding) of the key values followed by an 8-byte check, the start
// of SHA-256 over the listing's filter key and the values. A token is accepted only by a
// listing with the same filter key (the caller's normalized description of its filters) and
// only as issued: garbage, a token edited by hand or one from another listing is
// INVALID_ARGUMENT "page.page_token: not a token from this listing (use it with the same
// filters)". The check detects mistakes and casual edits; it is not a secret MAC, and a token
// grants nothing (the listing's own authorization applies).
//
// Page size: 0 means kDefaultPageSize, more than kMaxPageSize means kMaxPageSize, negative is
// INVALID_ARGUMENT ("page.page_size: must not be negative"). total_size is exact (a COUNT).
//
// Thread-safe (no shared state); KeysetPage::Run uses the given Database, which is not.
#ifndef MAILROOM_COMMON_SQLITE_PAGE_TOKEN_H_
#define MAILROOM_COMMON_SQLITE_PAGE_TOKEN_H_

#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/sqlite/database.h"
#include "proto/mailroom/common/v1/common.pb.h"

namespace mailroom::sqlite {

inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 1000;

enum class SortOrder { kAscending, kDescending };

// The token for a page that follows the row whose sort key is `last_key`.
std::string EncodePageToken(const std::vector<Value>& last_key, absl::string_view filter_key);
// The key in `token`; INVALID_ARGUMENT unless it was issued for `filter_key` with a key of
// `key_size` values.
absl::StatusOr<std::vector<Value>> DecodePageToken(absl::string_view token,
                                                   absl::string_view filter_key, size_t key_size);

namespace internal {
// The check EncodePageToken appends to `payload` for `filter_key`. Exposed for the fuzz target
// (tests/fuzz/page_token_fuzzer.cc), which signs arbitrary payloads to reach the payload
// reader behind the check.
std::string PageTokenCheck(absl::string_view filter_key, absl::string_view payload);
}  // namespace internal

// One page of a keyset listing.
class KeysetPage {
 public:
  // `key`: the sort key's SQL expressions, most significant first, e.g. {"create_us", "id"}.
  static absl::StatusOr<KeysetPage> Start(const ::mailroom::common::v1::PageRequest& page,
                                          std::string filter_key, std::vector<std::string> key,
                                          SortOrder order);

  int size() const { return size_; }

  // Sets out->total_size to the number of rows of `from` matching `filters`, then selects
  // "<columns>, <key...>" FROM `from`, filtered, after the token's row, in key order, and calls
  // on_row for each row of this page (its columns first, as in `columns`). Sets
  // out->next_page_token when more rows follow.
  absl::Status Run(Database* db, absl::string_view columns, absl::string_view from,
                   const Where& filters,
                   absl::FunctionRef<absl::Status(const Statement&)> on_row,
                   ::mailroom::common::v1::PageResponse* out) const;

 private:
  KeysetPage() = default;

  int size_ = kDefaultPageSize;
  std::string filter_key_;
  std::vector<std::string> key_;
  SortOrder order_ = SortOrder::kAscending;
  bool has_cursor_ = false;
  std::vector<Value> cursor_;
};

}  // namespace mailroom::sqlite

#endif  // MAILROOM_COMMON_SQLITE_PAGE_TOKEN_H_
