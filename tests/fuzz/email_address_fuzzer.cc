// Provides the fuzz target of mail address and IDN validation (common/mail/email_address.h):
// the input is an address as a portal or an admin typed it. Checks that an accepted address
// keeps the documented rules of its ASCII form (lengths, lower-case A-label domain, no
// control characters), that the ASCII form is accepted as itself, that the domain check
// agrees with the address check, and that an error names the field and is safe to show.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/base/utf8.h"
#include "common/mail/email_address.h"
#include "tests/fuzz/fuzz_check.h"

namespace mailroom {
namespace {

void CheckError(const absl::Status& status, absl::string_view field, const std::string& what) {
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument,
             absl::StrCat(what, ": ", status.ToString()));
  FUZZ_CHECK(absl::StartsWith(status.message(), absl::StrCat(field, ": ")),
             absl::StrCat(what, ": ", status.message()));
  FUZZ_CHECK(fuzz::IsSafeErrorMessage(status.message()),
             absl::StrCat(what, ": ", QuoteForError(status.message(), 400)));
}

// The rules of an ASCII domain as DomainForSmtp returns it.
void CheckAsciiDomain(absl::string_view domain, const std::string& what) {
  FUZZ_CHECK(!domain.empty() && domain.size() <= kMaxDomainOctets, what);
  const std::vector<absl::string_view> labels = absl::StrSplit(domain, '.');
  FUZZ_CHECK(labels.size() >= 2, what);
  for (absl::string_view label : labels) {
    FUZZ_CHECK(!label.empty() && label.size() <= kMaxDomainLabelOctets && label.front() != '-' &&
                   label.back() != '-',
               absl::StrCat(what, " label ", QuoteForError(label)));
    for (char c : label) {
      FUZZ_CHECK(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-',
                 absl::StrCat(what, " label ", QuoteForError(label)));
    }
  }
  FUZZ_CHECK(!std::all_of(labels.back().begin(), labels.back().end(),
                          [](char c) { return absl::ascii_isdigit(c); }),
             what);
}

}  // namespace
}  // namespace mailroom

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ::mailroom;  // NOLINT(build/namespaces): a fuzz entry point
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string what = absl::StrCat("input ", QuoteForError(input, 300));

  const absl::StatusOr<std::string> address = AddressForSmtp(input, "to[2].address");
  const absl::Status validated = ValidateEmailAddress(input, "to[2].address");
  FUZZ_CHECK(validated.ok() == address.ok(), absl::StrCat(what, ": ", validated.ToString()));
  if (!address.ok()) {
    CheckError(address.status(), "to[2].address", what);
  } else {
    const std::string& ascii = *address;
    const std::string result = absl::StrCat(what, " -> ", QuoteForError(ascii, 300));
    FUZZ_CHECK(ascii.size() <= kMaxAddressOctets, result);
    for (char c : ascii) {
      FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f,
                 result);
    }
    const size_t at = ascii.rfind('@');
    FUZZ_CHECK(at != std::string::npos && at > 0 && at <= kMaxLocalPartOctets, result);
    const absl::string_view domain = absl::string_view(ascii).substr(at + 1);
    if (absl::StartsWith(domain, "[")) {
      FUZZ_CHECK(absl::EndsWith(domain, "]"), result);
    } else {
      CheckAsciiDomain(domain, result);
      const absl::StatusOr<std::string> again = DomainForSmtp(domain, "domain");
      FUZZ_CHECK(again.ok() && *again == domain, result);
    }
    // The ASCII form is an address too, and its own ASCII form.
    const absl::StatusOr<std::string> again = AddressForSmtp(ascii, "to[2].address");
    FUZZ_CHECK(again.ok() && *again == ascii,
               absl::StrCat(result, " then ",
                            again.ok() ? QuoteForError(*again) : again.status().ToString()));
  }

  const absl::StatusOr<std::string> domain = DomainForSmtp(input, "ehlo_name");
  if (!domain.ok()) {
    CheckError(domain.status(), "ehlo_name", what);
  } else {
    const std::string result = absl::StrCat(what, " -> domain ", QuoteForError(*domain, 300));
    CheckAsciiDomain(*domain, result);
    const absl::StatusOr<std::string> again = DomainForSmtp(*domain, "ehlo_name");
    FUZZ_CHECK(again.ok() && *again == *domain, result);
    // Any domain that passes makes an address with a plain local part.
    const absl::StatusOr<std::string> with_local =
        AddressForSmtp(absl::StrCat("guest@", input), "to[2].address");
    FUZZ_CHECK(!with_local.ok() || *with_local == absl::StrCat("guest@", *domain), result);
  }
  return 0;
}
