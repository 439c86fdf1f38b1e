// Provides MostInWindow, the largest number of events in any rolling window of a given length:
// how Exchange's per-minute limit is checked at the receiving end. Stateless.
#ifndef MAILROOM_TESTS_TESTING_ROLLING_WINDOW_H_
#define MAILROOM_TESTS_TESTING_ROLLING_WINDOW_H_

#include <vector>

#include "absl/time/time.h"

namespace mailroom::testing {

// The most of `times` in any closed window [t, t + window].
int MostInWindow(std::vector<absl::Time> times, absl::Duration window);

}  // namespace mailroom::testing

#endif  // MAILROOM_TESTS_TESTING_ROLLING_WINDOW_H_
