// Provides the fuzz target of the CA-bundle parser (common/crypto/ca_bundle.h): the input is a
// trust store as an admin pastes it or names it by path. Checks that what is accepted is a
// non-empty run of PEM CERTIFICATE blocks that is accepted again unchanged (the broker
// forwards the re-encoding to every node, which parses it again), and that a refusal is
// INVALID_ARGUMENT with a message that is safe to show (the block's type comes from the input).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/base/utf8.h"
#include "common/crypto/ca_bundle.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ::mailroom;  // NOLINT(build/namespaces): a fuzz entry point
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string what = absl::StrCat("input ", QuoteForError(input, 600));
  const absl::StatusOr<std::string> certificates = crypto::CaCertificatesOnly(input);
  if (!certificates.ok()) {
    FUZZ_CHECK(certificates.status().code() == absl::StatusCode::kInvalidArgument,
               absl::StrCat(what, ": ", certificates.status().ToString()));
    FUZZ_CHECK(fuzz::IsSafeErrorMessage(certificates.status().message()),
               absl::StrCat(what, ": ", QuoteForError(certificates.status().message(), 400)));
    return 0;
  }
  const std::string& out = *certificates;
  FUZZ_CHECK(absl::StartsWith(out, "-----BEGIN CERTIFICATE-----\n") &&
                 absl::EndsWith(out, "-----END CERTIFICATE-----\n"),
             absl::StrCat(what, " -> ", QuoteForError(out, 300)));
  FUZZ_CHECK(out.size() <= crypto::kMaxCaBundleBytes * 2, what);
  const absl::StatusOr<std::string> again = crypto::CaCertificatesOnly(out);
  FUZZ_CHECK(again.ok() && *again == out,
             absl::StrCat(what, ": its re-encoding ",
                          again.ok() ? "changed" : again.status().ToString()));
  return 0;
}
