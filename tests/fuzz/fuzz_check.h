// Provides FUZZ_CHECK, the invariant check of the fuzz targets in this directory: when the
// condition is false it prints the failed condition and a message to stderr and aborts, which
// both libFuzzer and the suite's driver (fuzz_driver.cc) report as a crash together with the
// input that caused it; and IsSafeErrorMessage, the rule every error message built from
// outside input must keep. Header-only, so that a fuzz target links into either runner alone.
#ifndef MAILROOM_TESTS_FUZZ_FUZZ_CHECK_H_
#define MAILROOM_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "common/base/utf8.h"

namespace mailroom::fuzz {

// Well-formed UTF-8 without control characters (TAB aside): what common/base/utf8.h's
// QuoteForError makes of a hostile value, so that an error shown to an admin, logged or
// printed by mailroomctl cannot forge lines or carry terminal escapes.
inline bool IsSafeErrorMessage(absl::string_view message) {
  if (!IsValidUtf8(message)) return false;
  for (char c : message) {
    const unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

[[noreturn]] inline void FailCheck(const char* file, int line, const char* condition,
                                   absl::string_view message) {
  std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n  %.*s\n", file, line, condition,
               static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
  std::abort();
}

}  // namespace mailroom::fuzz

// FUZZ_CHECK(condition, message): `message` is anything convertible to absl::string_view
// (e.g. absl::StrCat(...)); it is evaluated only when the check fails.
#define FUZZ_CHECK(condition, message)                                              \
  do {                                                                              \
    if (!(condition)) {                                                             \
      ::mailroom::fuzz::FailCheck(__FILE__, __LINE__, #condition, std::string(message)); \
    }                                                                               \
  } while (false)

#endif  // MAILROOM_TESTS_FUZZ_FUZZ_CHECK_H_
