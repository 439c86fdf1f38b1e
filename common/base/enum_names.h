// Provides EnumName, the one lookup of an enumerator's display name in a table of names
// indexed by the enumerator's value, for enums numbered 0, 1, 2, ... without gaps. The
// names stay data beside the enum instead of a switch with a return per case; a value
// outside the table (a cast from a wider integer) gets the caller's fallback. Each table
// should sit beside a static_assert that it has a name for the enum's last enumerator, which
// catches an enumerator added without a name. Thread-safe (pure functions).
#ifndef MAILROOM_COMMON_BASE_ENUM_NAMES_H_
#define MAILROOM_COMMON_BASE_ENUM_NAMES_H_

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "absl/strings/string_view.h"

namespace mailroom {

// How many names a table must have to name every enumerator up to and including `last`.
template <typename Enum>
constexpr size_t EnumCount(Enum last) {
  return static_cast<size_t>(last) + 1;
}

// names[value], or `fallback` when `value` has no entry in `names`.
template <typename Enum, size_t N>
constexpr absl::string_view EnumName(Enum value, const absl::string_view (&names)[N],
                                     absl::string_view fallback) {
  static_assert(std::is_enum_v<Enum>, "EnumName names enumerators");
  const int64_t index = static_cast<int64_t>(static_cast<std::underlying_type_t<Enum>>(value));
  if (index < 0 || static_cast<uint64_t>(index) >= N) return fallback;
  return names[index];
}

}  // namespace mailroom

#endif  // MAILROOM_COMMON_BASE_ENUM_NAMES_H_
