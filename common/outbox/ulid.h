// Provides UlidGenerator: ULIDs (https://github.com/ulid/spec), 26 Crockford base-32
// characters of a 48-bit millisecond time and 80 random bits, that sort by creation time.
// Within one millisecond (or if the clock goes back) the generator increments the random part
// instead, so the ids of one generator are strictly increasing. The outbox names its
// notifications and Message-IDs with them.
//
// Thread-safe.
#ifndef MAILROOM_COMMON_OUTBOX_ULID_H_
#define MAILROOM_COMMON_OUTBOX_ULID_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"
#include "common/base/clock.h"

namespace mailroom {

class UlidGenerator {
 public:
  // `clock` must outlive the generator.
  explicit UlidGenerator(const Clock* clock) : clock_(clock) {}

  std::string Next();

 private:
  const Clock* const clock_;
  absl::Mutex mu_;
  uint64_t last_ms_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_hi_ ABSL_GUARDED_BY(mu_) = 0;  // top 16 of the 80 random bits
  uint64_t last_lo_ ABSL_GUARDED_BY(mu_) = 0;  // low 64 random bits
  absl::BitGen bitgen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_OUTBOX_ULID_H_
