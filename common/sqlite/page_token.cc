#include "common/sqlite/page_token.h"

#include <openssl/evp.h>

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mailroom::sqlite {
namespace {

constexpr size_t kCheckSize = 8;

std::string Check(absl::string_view filter_key, absl::string_view payload) {
  const std::string input = absl::StrCat("mailroom.page-token.v1", absl::string_view("\0", 1),
                                         filter_key, absl::string_view("\0", 1), payload);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(input.data(), input.size(), digest, &size, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), kCheckSize);
}

absl::Status BadToken() {
  return absl::InvalidArgumentError(
      "page.page_token: not a token from this listing (use it with the same filters)");
}

// Reads decimal digits (with an optional '-') up to `end`.
bool TakeNumber(absl::string_view* in, char end, int64_t* out) {
  const size_t stop = in->find(end);
  if (stop == absl::string_view::npos || !absl::SimpleAtoi(in->substr(0, stop), out)) return false;
  in->remove_prefix(stop + 1);
  return true;
}

}  // namespace

namespace internal {
std::string PageTokenCheck(absl::string_view filter_key, absl::string_view payload) {
  return Check(filter_key, payload);
}
}  // namespace internal

// Payload: per value, "i<decimal>;" or "s<length>:<bytes>".
std::string EncodePageToken(const std::vector<Value>& last_key, absl::string_view filter_key) {
  std::string payload;
  for (const Value& v : last_key) {
    if (const int64_t* n = std::get_if<int64_t>(&v)) {
      absl::StrAppend(&payload, "i", *n, ";");
    } else {
      const std::string& s = std::get<std::string>(v);
      absl::StrAppend(&payload, "s", s.size(), ":", s);
    }
  }
  return absl::WebSafeBase64Escape(absl::StrCat(payload, Check(filter_key, payload)));
}

absl::StatusOr<std::vector<Value>> DecodePageToken(absl::string_view token,
                                                   absl::string_view filter_key,
                                                   size_t key_size) {
  std::string decoded;
  if (!absl::WebSafeBase64Unescape(token, &decoded) || decoded.size() < kCheckSize ||
      absl::WebSafeBase64Escape(decoded) != token) {  // only the canonical spelling
    return BadToken();
  }
  absl::string_view payload(decoded.data(), decoded.size() - kCheckSize);
  if (Check(filter_key, payload) != absl::string_view(decoded).substr(payload.size())) {
    return BadToken();
  }
  std::vector<Value> key;
  while (!payload.empty()) {
    const char tag = payload[0];
    payload.remove_prefix(1);
    int64_t n = 0;
    if (tag == 'i' && TakeNumber(&payload, ';', &n)) {
      key.emplace_back(n);
    } else if (tag == 's' && TakeNumber(&payload, ':', &n) && n >= 0 &&
               static_cast<size_t>(n) <= payload.size()) {
      key.emplace_back(std::string(payload.substr(0, n)));
      payload.remove_prefix(n);
    } else {
      return BadToken();
    }
  }
  if (key.size() != key_size) return BadToken();
  return key;
}

absl::StatusOr<KeysetPage> KeysetPage::Start(const ::mailroom::common::v1::PageRequest& page,
                                             std::string filter_key,
                                             std::vector<std::string> key, SortOrder order) {
  KeysetPage out;
  if (page.page_size() < 0) {
    return absl::InvalidArgumentError("page.page_size: must not be negative");
  }
  out.size_ = page.page_size() == 0 ? kDefaultPageSize : std::min(page.page_size(), kMaxPageSize);
  out.filter_key_ = std::move(filter_key);
  out.key_ = std::move(key);
  out.order_ = order;
  if (!page.page_token().empty()) {
    absl::StatusOr<std::vector<Value>> cursor =
        DecodePageToken(page.page_token(), out.filter_key_, out.key_.size());
    if (!cursor.ok()) return cursor.status();
    out.has_cursor_ = true;
    out.cursor_ = *std::move(cursor);
  }
  return out;
}

absl::Status KeysetPage::Run(Database* db, absl::string_view columns, absl::string_view from,
                             const Where& filters,
                             absl::FunctionRef<absl::Status(const Statement&)> on_row,
                             ::mailroom::common::v1::PageResponse* out) const {
  {
    absl::StatusOr<Statement> count =
        db->PrepareOnce(absl::StrCat("SELECT COUNT(*) FROM ", from, filters.Sql()));
    if (!count.ok()) return count.status();
    count->BindAll(filters.values);
    absl::StatusOr<bool> row = count->Step();
    if (!row.ok()) return row.status();
    out->set_total_size(count->Int(0));
  }
  const bool descending = order_ == SortOrder::kDescending;
  Where page = filters;
  if (has_cursor_) {
    std::vector<absl::string_view> marks(key_.size(), "?");
    page.Add(absl::StrCat("(", absl::StrJoin(key_, ", "), ") ", descending ? "<" : ">", " (",
                          absl::StrJoin(marks, ", "), ")"),
             cursor_);
  }
  const char* direction = descending ? " DESC" : "";
  const std::string order_by = absl::StrJoin(
      key_, ", ", [direction](std::string* o, const std::string& k) { absl::StrAppend(o, k, direction); });
  absl::StatusOr<Statement> q = db->PrepareOnce(
      absl::StrCat("SELECT ", columns, ", ", absl::StrJoin(key_, ", "), " FROM ", from,
                   page.Sql(), " ORDER BY ", order_by, " LIMIT ", size_ + 1));
  if (!q.ok()) return q.status();
  q->BindAll(page.values);
  const int first_key = q->ColumnCount() - static_cast<int>(key_.size());
  std::vector<Value> last;
  for (int returned = 0;; ++returned) {
    absl::StatusOr<bool> row = q->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (returned == size_) {
      out->set_next_page_token(EncodePageToken(last, filter_key_));
      break;
    }
    if (absl::Status s = on_row(*q); !s.ok()) return s;
    last.clear();
    for (size_t k = 0; k < key_.size(); ++k) last.push_back(q->ValueAt(first_key + k));
  }
  return absl::OkStatus();
}

}  // namespace mailroom::sqlite
