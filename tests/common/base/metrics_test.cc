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
