#include "tests/testing/rolling_window.h"

#include <algorithm>

namespace mailroom::testing {

int MostInWindow(std::vector<absl::Time> times, absl::Duration window) {
  std::sort(times.begin(), times.end());
  int most = 0;
  size_t first = 0;
  for (size_t last = 0; last < times.size(); ++last) {
    while (times[last] - times[first] > window) ++first;
    most = std::max(most, static_cast<int>(last - first + 1));
  }
  return most;
}

}  // namespace mailroom::testing
