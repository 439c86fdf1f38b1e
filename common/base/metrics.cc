#include "common/base/metrics.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mailroom {
namespace {

std::string Escape(absl::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string LabelText(const MetricLabels& labels, absl::string_view extra_name = "",
                      absl::string_view extra_value = "") {
  std::string out;
  for (const auto& [name, value] : labels) {
    absl::StrAppend(&out, out.empty() ? "" : ",", name, "=\"", Escape(value), "\"");
  }
  if (!extra_name.empty()) {
    absl::StrAppend(&out, out.empty() ? "" : ",", extra_name, "=\"", extra_value, "\"");
  }
  return out.empty() ? "" : absl::StrCat("{", out, "}");
}

std::string Number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  return absl::StrFormat("%.6g", value);
}

}  // namespace

Metrics& Metrics::Global() {
  static Metrics* metrics = new Metrics();
  return *metrics;
}

Metrics::Family& Metrics::FamilyLocked(absl::string_view name, absl::string_view help, Type type) {
  auto [it, inserted] = families_.try_emplace(std::string(name));
  if (inserted) {
    it->second.type = type;
    it->second.help = std::string(help);
  }
  return it->second;
}

void Metrics::Increment(absl::string_view name, absl::string_view help, const MetricLabels& labels,
                        double delta) {
  absl::MutexLock lock(&mu_);
  FamilyLocked(name, help, Type::kCounter).values[labels] += delta;
}

void Metrics::Set(absl::string_view name, absl::string_view help, const MetricLabels& labels,
                  double value) {
  absl::MutexLock lock(&mu_);
  FamilyLocked(name, help, Type::kGauge).values[labels] = value;
}

void Metrics::Observe(absl::string_view name, absl::string_view help, const MetricLabels& labels,
                      absl::Duration latency, absl::Span<const double> bucket_seconds) {
  const double seconds = absl::ToDoubleSeconds(latency);
  absl::MutexLock lock(&mu_);
  Family& family = FamilyLocked(name, help, Type::kHistogram);
  if (family.bounds.empty()) {
    const absl::Span<const double> bounds =
        bucket_seconds.empty() ? absl::MakeConstSpan(kLatencyBuckets) : bucket_seconds;
    family.bounds.assign(bounds.begin(), bounds.end());
  }
  Histogram& histogram = family.histograms[labels];
  if (histogram.buckets.empty()) histogram.buckets.assign(family.bounds.size(), 0);
  for (size_t i = 0; i < family.bounds.size(); ++i) {
    if (seconds <= family.bounds[i]) ++histogram.buckets[i];
  }
  ++histogram.count;
  histogram.sum += seconds;
}

const Metrics::Histogram* Metrics::FindHistogramLocked(absl::string_view name,
                                                       const MetricLabels& labels,
                                                       const Family** family) const {
  auto found = families_.find(std::string(name));
  if (found == families_.end()) return nullptr;
  auto histogram = found->second.histograms.find(labels);
  if (histogram == found->second.histograms.end()) return nullptr;
  *family = &found->second;
  return &histogram->second;
}

uint64_t Metrics::ObservationCount(absl::string_view name, const MetricLabels& labels) const {
  absl::MutexLock lock(&mu_);
  const Family* family = nullptr;
  const Histogram* histogram = FindHistogramLocked(name, labels, &family);
  return histogram == nullptr ? 0 : histogram->count;
}

absl::optional<absl::Duration> Metrics::Quantile(absl::string_view name,
                                                 const MetricLabels& labels, double q) const {
  absl::MutexLock lock(&mu_);
  const Family* family = nullptr;
  const Histogram* histogram = FindHistogramLocked(name, labels, &family);
  if (histogram == nullptr || histogram->count == 0) return absl::nullopt;
  const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(histogram->count);
  double lower = 0;
  uint64_t below = 0;  // observations in the buckets before this one
  for (size_t i = 0; i < family->bounds.size(); ++i) {
    const uint64_t cumulative = histogram->buckets[i];
    if (static_cast<double>(cumulative) >= rank && cumulative > below) {
      const double fraction =
          (rank - static_cast<double>(below)) / static_cast<double>(cumulative - below);
      return absl::Seconds(lower + (family->bounds[i] - lower) * fraction);
    }
    lower = family->bounds[i];
    below = cumulative;
  }
  // Beyond the largest bound: that bound is all a histogram can say.
  return absl::Seconds(family->bounds.back());
}

void Metrics::RegisterGaugeCallback(
    absl::string_view name, absl::string_view help,
    std::function<std::vector<std::pair<MetricLabels, double>>()> callback) {
  absl::MutexLock lock(&mu_);
  FamilyLocked(name, help, Type::kGauge).callback = std::move(callback);
}

double Metrics::Value(absl::string_view name, const MetricLabels& labels) const {
  absl::MutexLock lock(&mu_);
  auto family = families_.find(std::string(name));
  if (family == families_.end()) return 0;
  auto value = family->second.values.find(labels);
  return value == family->second.values.end() ? 0 : value->second;
}

std::string Metrics::Render() const {
  // Callbacks may take their own locks: copy them out and run them without ours.
  std::vector<std::pair<std::string, std::function<std::vector<std::pair<MetricLabels, double>>()>>>
      callbacks;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, family] : families_) {
      if (family.callback) callbacks.emplace_back(name, family.callback);
    }
  }
  std::map<std::string, std::vector<std::pair<MetricLabels, double>>> computed;
  for (const auto& [name, callback] : callbacks) computed[name] = callback();

  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, family] : families_) {
    const char* type = family.type == Type::kCounter     ? "counter"
                       : family.type == Type::kHistogram ? "histogram"
                                                         : "gauge";
    absl::StrAppend(&out, "# HELP ", name, " ", family.help, "\n# TYPE ", name, " ", type, "\n");
    for (const auto& [labels, value] : family.values) {
      absl::StrAppend(&out, name, LabelText(labels), " ", Number(value), "\n");
    }
    if (auto it = computed.find(name); it != computed.end()) {
      for (const auto& [labels, value] : it->second) {
        absl::StrAppend(&out, name, LabelText(labels), " ", Number(value), "\n");
      }
    }
    for (const auto& [labels, histogram] : family.histograms) {
      for (size_t i = 0; i < family.bounds.size(); ++i) {
        absl::StrAppend(&out, name, "_bucket", LabelText(labels, "le", Number(family.bounds[i])),
                        " ", histogram.buckets[i], "\n");
      }
      absl::StrAppend(&out, name, "_bucket", LabelText(labels, "le", "+Inf"), " ",
                      histogram.count, "\n");
      absl::StrAppend(&out, name, "_sum", LabelText(labels), " ", Number(histogram.sum), "\n");
      absl::StrAppend(&out, name, "_count", LabelText(labels), " ", histogram.count, "\n");
    }
  }
  return out;
}

}  // namespace mailroom
