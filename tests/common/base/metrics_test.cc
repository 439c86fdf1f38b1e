// Metrics: the Prometheus text format (checked line by line) and the /metrics HTTP endpoint
// fetched for real over loopback with libcurl.
#include "common/base/metrics.h"

#include <curl/curl.h>

#include "absl/strings/str_cat.h"
#include "common/rpc/metrics_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(Metrics, RendersCountersGaugesAndHistograms) {
  Metrics metrics;
  metrics.Increment("mailroom_sent_total", "Messages accepted by the server.");
  metrics.Increment("mailroom_sent_total", "Messages accepted by the server.", {}, 2);
  metrics.Increment("mailroom_smtp_replies_total", "SMTP final replies by class.", {{"class", "4xx"}});
  metrics.Set("mailroom_token_age_seconds", "Age of the cached token.", {}, 12.5);
  metrics.Observe("mailroom_rpc_latency_seconds", "RPC latency.", {{"method", "GetAccessToken"}},
                  absl::Milliseconds(3));
  metrics.RegisterGaugeCallback("mailroom_outbox_entries", "Outbox entries by state.", [] {
    return std::vector<std::pair<MetricLabels, double>>{{{{"state", "queued"}}, 7}};
  });
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("# TYPE mailroom_sent_total counter\nmailroom_sent_total 3\n"));
  EXPECT_THAT(text, HasSubstr("mailroom_smtp_replies_total{class=\"4xx\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE mailroom_token_age_seconds gauge\nmailroom_token_age_seconds 12.5\n"));
  EXPECT_THAT(text, HasSubstr("mailroom_outbox_entries{state=\"queued\"} 7\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE mailroom_rpc_latency_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("mailroom_rpc_latency_seconds_bucket{method=\"GetAccessToken\",le=\"0.0025\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("mailroom_rpc_latency_seconds_bucket{method=\"GetAccessToken\",le=\"0.005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mailroom_rpc_latency_seconds_count{method=\"GetAccessToken\"} 1\n"));
  EXPECT_EQ(metrics.Value("mailroom_sent_total"), 3);
}

TEST(Metrics, HistogramsKeepTheBucketsOfTheirFirstObservation) {
  Metrics metrics;
  metrics.Observe("mailroom_delivery_latency_seconds", "Enqueue to 250.", {{"node", "psn1"}},
                  absl::Minutes(3), kLongLatencyBuckets);
  // A later call without buckets does not change them.
  metrics.Observe("mailroom_delivery_latency_seconds", "Enqueue to 250.", {{"node", "psn2"}},
                  absl::Seconds(2));
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("mailroom_delivery_latency_seconds_bucket{node=\"psn1\",le=\"60\"} 0\n"));
  EXPECT_THAT(text,
              HasSubstr("mailroom_delivery_latency_seconds_bucket{node=\"psn1\",le=\"300\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("mailroom_delivery_latency_seconds_bucket{node=\"psn2\",le=\"2.5\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mailroom_delivery_latency_seconds_bucket{node=\"psn2\",le=\"86400\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("le=\"0.001\"")));
  EXPECT_EQ(metrics.ObservationCount("mailroom_delivery_latency_seconds", {{"node", "psn1"}}), 1);
  EXPECT_EQ(metrics.ObservationCount("mailroom_delivery_latency_seconds", {{"node", "psn3"}}), 0);
}

TEST(Metrics, QuantilesAreInterpolatedWithinTheirBucket) {
  Metrics metrics;
  const MetricLabels labels = {{"node", "psn1"}};
  EXPECT_EQ(metrics.Quantile("latency", labels, 0.5), absl::nullopt);
  // 100 observations: 50 in (0.1, 0.25], 49 in (0.5, 1], 1 in (60, 300].
  for (int i = 0; i < 50; ++i) {
    metrics.Observe("latency", "h", labels, absl::Milliseconds(200), kLongLatencyBuckets);
  }
  for (int i = 0; i < 49; ++i) {
    metrics.Observe("latency", "h", labels, absl::Milliseconds(700), kLongLatencyBuckets);
  }
  metrics.Observe("latency", "h", labels, absl::Seconds(100), kLongLatencyBuckets);
  // Rank 50 is the last of the first bucket: its upper bound.
  EXPECT_EQ(metrics.Quantile("latency", labels, 0.5), absl::Milliseconds(250));
  // Rank 75 is 25/49 of the way through (0.5, 1].
  const absl::Duration p75 = *metrics.Quantile("latency", labels, 0.75);
  EXPECT_NEAR(absl::ToDoubleSeconds(p75), 0.5 + 0.5 * 25.0 / 49.0, 1e-9);
  // Rank 99 is the last of (0.5, 1]; rank 100 falls into (60, 300].
  EXPECT_EQ(metrics.Quantile("latency", labels, 0.99), absl::Seconds(1));
  EXPECT_EQ(metrics.Quantile("latency", labels, 1.0), absl::Seconds(300));
  EXPECT_EQ(metrics.ObservationCount("latency", labels), 100);
}

TEST(Metrics, AQuantileBeyondTheLargestBoundIsThatBound) {
  Metrics metrics;
  metrics.Observe("rpc", "h", {}, absl::Seconds(30));
  EXPECT_EQ(metrics.Quantile("rpc", {}, 0.5), absl::Seconds(10));
}

TEST(Metrics, LabelValuesAreEscaped) {
  Metrics metrics;
  metrics.Increment("m_total", "h", {{"reason", "say \"hi\"\\\n"}});
  EXPECT_THAT(metrics.Render(), HasSubstr("m_total{reason=\"say \\\"hi\\\"\\\\\\n\"} 1\n"));
}

size_t Append(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

TEST(MetricsServer, ServesTheRegistryOverHttp) {
  Metrics metrics;
  metrics.Increment("mailroom_sent_total", "Messages accepted by the server.", {}, 5);
  MetricsServer server(&metrics);
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  ASSERT_GT(server.port(), 0);
  CURL* curl = curl_easy_init();
  std::string body;
  const std::string url = absl::StrCat("http://127.0.0.1:", server.port(), "/metrics");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 5L);
  ASSERT_EQ(curl_easy_perform(curl), CURLE_OK);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  EXPECT_EQ(status, 200);
  EXPECT_THAT(body, HasSubstr("mailroom_sent_total 5\n"));
  server.Stop();
}

TEST(MetricsServer, BadAddressNamesTheField) {
  Metrics metrics;
  MetricsServer server(&metrics);
  EXPECT_THAT(std::string(server.Start("no-port").message()), HasSubstr("metrics_listen_address"));
}

}  // namespace
}  // namespace mailroom
