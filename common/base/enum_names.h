// Provides EnumLookup and EnumName, the one lookup of what an enumerator maps to (its display
// name, the proto value that reports it, ...) in a table indexed by the enumerator's value,
// for enums numbered 0, 1, 2, ... without gaps. The mapping stays data beside the enum instead
// of a switch with a statement per case; a value outside the table (a cast from a wider
// integer, a proto enum value from a newer peer) gets the caller's fallback. Each table should
// sit beside a static_assert that it has an entry for the enum's last enumerator (EnumCount,
// or a proto enum's _ARRAYSIZE), which catches an enumerator added without one.
// Thread-safe (pure functions).
#ifndef MAILROOM_COMMON_BASE_ENUM_NAMES_H_
#define MAILROOM_COMMON_BASE_ENUM_NAMES_H_

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "absl/strings/string_view.h"

namespace mailroom {

// How many entries a table must have to cover every enumerator up to and including `last`.
template <typename Enum>
constexpr size_t EnumCount(Enum last) {
  return static_cast<size_t>(last) + 1;
}

// table[value], or `fallback` when `value` has no entry in `table`.
template <typename Enum, typename T, size_t N>
constexpr T EnumLookup(Enum value, const T (&table)[N], T fallback) {
  static_assert(std::is_enum_v<Enum>, "EnumLookup maps enumerators");
  const int64_t index = static_cast<int64_t>(static_cast<std::underlying_type_t<Enum>>(value));
  if (index < 0 || static_cast<uint64_t>(index) >= N) return fallback;
  return table[index];
}

// The name `names` gives `value`, or `fallback`.
template <typename Enum, size_t N>
constexpr absl::string_view EnumName(Enum value, const absl::string_view (&names)[N],
                                     absl::string_view fallback) {
  return EnumLookup(value, names, fallback);
}

}  // namespace mailroom

#endif  // MAILROOM_COMMON_BASE_ENUM_NAMES_H_
