// Provides Metrics, a process-wide registry of counters, gauges and latency histograms with
// labels, rendered in the Prometheus text exposition format (version 0.0.4) for /metrics.
// Gauges whose value lives elsewhere (queue depth, token age) are read at scrape time through
// callbacks. Label values are escaped; names are checked when registered. Thread-safe.
#ifndef MAILROOM_COMMON_METRICS_H_
#define MAILROOM_COMMON_METRICS_H_

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mailroom {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  Metrics() = default;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // The instance the node's /metrics serves.
  static Metrics& Global();

  // Adds `delta` to a counter (created on first use with `help`).
  void Increment(absl::string_view name, absl::string_view help, const MetricLabels& labels = {},
                 double delta = 1);
  // Sets a gauge.
  void Set(absl::string_view name, absl::string_view help, const MetricLabels& labels, double value);
  // Records a latency observation into a histogram with fixed buckets (1 ms .. 10 s).
  void Observe(absl::string_view name, absl::string_view help, const MetricLabels& labels,
               absl::Duration latency);
  // A gauge family computed at scrape time: the callback returns (labels, value) pairs.
  void RegisterGaugeCallback(absl::string_view name, absl::string_view help,
                             std::function<std::vector<std::pair<MetricLabels, double>>()> callback);

  // The whole registry in the Prometheus text format.
  std::string Render() const;

  // A counter's or gauge's current value (0 if absent); for tests and the admin CLI.
  double Value(absl::string_view name, const MetricLabels& labels = {}) const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Histogram {
    std::vector<uint64_t> buckets;
    uint64_t count = 0;
    double sum = 0;
  };
  struct Family {
    Type type;
    std::string help;
    std::map<MetricLabels, double> values;
    std::map<MetricLabels, Histogram> histograms;
    std::function<std::vector<std::pair<MetricLabels, double>>()> callback;
  };

  Family& FamilyLocked(absl::string_view name, absl::string_view help, Type type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_METRICS_H_
