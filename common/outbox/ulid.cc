#include "common/outbox/ulid.h"

#include "absl/numeric/int128.h"

namespace mailroom {

std::string UlidGenerator::Next() {
  static constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  absl::MutexLock lock(&mu_);
  const int64_t now_ms = absl::ToUnixMillis(clock_->Now());
  uint64_t ms = now_ms < 0 ? 0 : static_cast<uint64_t>(now_ms) & ((uint64_t{1} << 48) - 1);
  if (ms <= last_ms_ && last_ms_ != 0) {
    // Same millisecond (or the clock went back): stay monotonic by incrementing.
    ms = last_ms_;
    if (++last_lo_ == 0) {
      last_hi_ = (last_hi_ + 1) & 0xffff;
      if (last_hi_ == 0) ++ms;
    }
  } else {
    last_hi_ = absl::Uniform<uint64_t>(bitgen_) & 0xffff;
    last_lo_ = absl::Uniform<uint64_t>(bitgen_);
  }
  last_ms_ = ms;
  const absl::uint128 value = absl::MakeUint128((ms << 16) | last_hi_, last_lo_);
  std::string out(26, '0');
  for (int i = 0; i < 26; ++i) {
    out[i] = kCrockford[static_cast<int>(absl::Uint128Low64(value >> (125 - 5 * i)) & 31)];
  }
  return out;
}

}  // namespace mailroom
