// Provides the fuzz target of page tokens (common/sqlite/page_token.h), which clients send
// back in common.v1.PageRequest.page_token. Each input is used three ways: as a token (it
// must be refused unless it is exactly what the encoder issued for that listing); as a payload
// signed with the listing's real check (internal::PageTokenCheck), which reaches the payload
// reader behind the check (what it accepts must re-encode to a token that decodes to the same
// key); and as a key (values separated by 0x1F, "i<n>" for a number), which must round-trip
// through a token and be refused by any other listing or key shape.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/base/utf8.h"
#include "common/sqlite/database.h"
#include "common/sqlite/page_token.h"
#include "tests/fuzz/fuzz_check.h"

namespace mailroom::sqlite {
namespace {

constexpr absl::string_view kFilterKey = "accounts;status=1;q=guest";
constexpr absl::string_view kOtherFilterKey = "accounts;status=2;q=guest";

void CheckRefusal(const absl::Status& status, const std::string& what) {
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument &&
                 absl::StartsWith(status.message(), "page.page_token: "),
             absl::StrCat(what, ": ", status.ToString()));
}

void AsToken(absl::string_view input, const std::string& what) {
  for (size_t key_size = 0; key_size <= 3; ++key_size) {
    const absl::StatusOr<std::vector<Value>> key = DecodePageToken(input, kFilterKey, key_size);
    if (!key.ok()) {
      CheckRefusal(key.status(), what);
      continue;
    }
    FUZZ_CHECK(key->size() == key_size && EncodePageToken(*key, kFilterKey) == input, what);
  }
}

void AsSignedPayload(absl::string_view payload, const std::string& what) {
  const std::string token = absl::WebSafeBase64Escape(
      absl::StrCat(payload, internal::PageTokenCheck(kFilterKey, payload)));
  for (size_t key_size = 0; key_size <= 3; ++key_size) {
    const absl::StatusOr<std::vector<Value>> key = DecodePageToken(token, kFilterKey, key_size);
    if (!key.ok()) {
      CheckRefusal(key.status(), what);
      continue;
    }
    const std::string reissued = EncodePageToken(*key, kFilterKey);
    const absl::StatusOr<std::vector<Value>> again =
        DecodePageToken(reissued, kFilterKey, key_size);
    FUZZ_CHECK(again.ok() && *again == *key, absl::StrCat(what, " reissued as ", reissued));
    FUZZ_CHECK(!DecodePageToken(token, kOtherFilterKey, key_size).ok(), what);
  }
}

void AsKey(absl::string_view input, const std::string& what) {
  std::vector<Value> key;
  for (absl::string_view part : absl::StrSplit(input, '\x1f')) {
    int64_t number = 0;
    if (absl::ConsumePrefix(&part, "i") && absl::SimpleAtoi(part, &number)) {
      key.emplace_back(number);
    } else {
      key.emplace_back(std::string(part));
    }
  }
  const std::string token = EncodePageToken(key, kFilterKey);
  for (char c : token) {
    FUZZ_CHECK(absl::ascii_isalnum(c) || c == '-' || c == '_', absl::StrCat(what, " -> ", token));
  }
  const absl::StatusOr<std::vector<Value>> decoded = DecodePageToken(token, kFilterKey, key.size());
  FUZZ_CHECK(decoded.ok() && *decoded == key, absl::StrCat(what, " -> ", token));
  FUZZ_CHECK(!DecodePageToken(token, kOtherFilterKey, key.size()).ok(), what);
  FUZZ_CHECK(!DecodePageToken(token, kFilterKey, key.size() + 1).ok(), what);
}

}  // namespace
}  // namespace mailroom::sqlite

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ::mailroom::sqlite;  // NOLINT(build/namespaces): a fuzz entry point
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string what = absl::StrCat("input ", ::mailroom::QuoteForError(input, 300));
  AsToken(input, what);
  AsSignedPayload(input, what);
  AsKey(input, what);
  return 0;
}
