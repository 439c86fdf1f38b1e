// Provides Metrics, a process-wide registry of counters, gauges and latency histograms with
// labels, rendered in the Prometheus text exposition format (version 0.0.4) for /metrics.
// Gauges whose value lives elsewhere (queue depth, token age) are read at scrape time through
// callbacks. Histograms estimate their quantiles for status views (p50/p99). Label values are escaped; names are checked when registered. Thread-safe.
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
#include "absl/types/optional.h"
#include "absl/types/span.h"

namespace mailroom {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// Histogram bucket bounds in seconds. RPCs and other in-process latencies:
inline constexpr double kLatencyBuckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,    1,     2.5,  5,     10};
// Waits of up to a day, such as mail from enqueue to delivery through retries and outages:
inline constexpr double kLongLatencyBuckets[] = {0.05, 0.1,  0.25, 0.5,   1,     2.5,
                                                 5,    10,   30,   60,    300,   900,
                                                 3600, 7200, 21600, 43200, 86400};

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
  // Records a latency observation into a histogram. Its bucket upper bounds (seconds,
  // ascending) are fixed by the family's first observation: `bucket_seconds`, or when empty
  // kLatencyBuckets (1 ms .. 10 s, for RPCs).
  void Observe(absl::string_view name, absl::string_view help, const MetricLabels& labels,
               absl::Duration latency, absl::Span<const double> bucket_seconds = {});
  // A gauge family computed at scrape time: the callback returns (labels, value) pairs.
  void RegisterGaugeCallback(absl::string_view name, absl::string_view help,
                             std::function<std::vector<std::pair<MetricLabels, double>>()> callback);

  // The whole registry in the Prometheus text format.
  std::string Render() const;

  // A counter's or gauge's current value (0 if absent); for tests and the admin CLI.
  double Value(absl::string_view name, const MetricLabels& labels = {}) const;

  // Observations in a histogram (0 if absent).
  uint64_t ObservationCount(absl::string_view name, const MetricLabels& labels = {}) const;
  // The `q`-quantile (0 < q <= 1) of a histogram, estimated as Prometheus's
  // histogram_quantile does: linear between the bounds of the bucket it falls in (from 0 for
  // the first), the largest finite bound when it falls beyond all of them. nullopt when the
  // histogram has no observations.
  absl::optional<absl::Duration> Quantile(absl::string_view name, const MetricLabels& labels,
                                          double q) const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Histogram {
    // Cumulative: buckets[i] counts the observations <= the family's bounds[i].
    std::vector<uint64_t> buckets;
    uint64_t count = 0;
    double sum = 0;
  };
  struct Family {
    Type type;
    std::string help;
    std::map<MetricLabels, double> values;
    std::map<MetricLabels, Histogram> histograms;
    std::vector<double> bounds;  // histogram bucket bounds, seconds ascending
    std::function<std::vector<std::pair<MetricLabels, double>>()> callback;
  };

  Family& FamilyLocked(absl::string_view name, absl::string_view help, Type type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The histogram `name{labels}`, or null.
  const Histogram* FindHistogramLocked(absl::string_view name, const MetricLabels& labels,
                                       const Family** family) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_METRICS_H_
