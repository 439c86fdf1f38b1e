#include "common/base/token_margins.h"

#include <algorithm>

namespace mailroom {

absl::Duration ScaledMargin(absl::Duration wanted, absl::Duration lifetime, double fraction) {
  if (lifetime == absl::InfiniteDuration()) return wanted;
  if (lifetime <= absl::ZeroDuration()) return absl::ZeroDuration();
  return std::max(absl::ZeroDuration(), std::min(wanted, lifetime * fraction));
}

}  // namespace mailroom
