#include "tests/testing/ha_mail_cluster.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "tests/testing/guest_burst.h"
#include "tests/testing/rolling_window.h"
#include "tests/testing/test_certs.h"

namespace mailroom::testing {
namespace {

using ::grpc::health::v1::HealthCheckResponse;

size_t Append(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// 1 if the broker's gauge says it leads, 0 if not, -1 if it did not answer (down).
int LeaderGauge(const std::string& metrics_address) {
  CURL* curl = curl_easy_init();
  std::string body;
  const std::string url = absl::StrCat("http://", metrics_address, "/metrics");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 500L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  const CURLcode code = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  if (code != CURLE_OK) return -1;
  return absl::StrContains(body, "\nmailroom_broker_leader 1") ? 1 : 0;
}

std::string Seconds(absl::Duration d) {
  return absl::StrFormat("%.2f", absl::ToDoubleSeconds(d));
}

}  // namespace

LeaderWatch::LeaderWatch(std::vector<std::string> metrics_addresses, absl::Duration period)
    : addresses_(std::move(metrics_addresses)), period_(period), began_(absl::Now()) {
  leading_.assign(addresses_.size(), false);
  thread_ = std::thread([this] { Run(); });
}

LeaderWatch::~LeaderWatch() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void LeaderWatch::Run() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
    }
    std::vector<int> leading;
    for (size_t i = 0; i < addresses_.size(); ++i) {
      if (LeaderGauge(addresses_[i]) == 1) leading.push_back(static_cast<int>(i));
    }
    const absl::Time now = absl::Now();
    {
      absl::MutexLock lock(&mu_);
      ++sweeps_;
      std::vector<bool> now_leading(addresses_.size(), false);
      for (int i : leading) now_leading[i] = true;
      for (size_t i = 0; i < addresses_.size(); ++i) {
        if (!now_leading[i]) continue;
        if (!leading_[i]) terms_.push_back(Term{static_cast<int>(i), now, now});
        for (auto it = terms_.rbegin(); it != terms_.rend(); ++it) {
          if (it->broker == static_cast<int>(i)) {
            it->last = now;
            break;
          }
        }
      }
      leading_ = now_leading;
      if (leading.size() > 1) ++overlapping_;
      if (leading.empty()) ++leaderless_;
      if (leading.size() == 1) {
        const int leader = leading[0];
        if (leader != last_leader_) {
          if (last_leader_ >= 0) {
            ++handovers_;
            shortest_gap_ = std::min(shortest_gap_, now - last_led_at_);
            absl::StrAppend(&timeline_, Seconds(last_led_at_ - began_), " s; ");
          }
          absl::StrAppend(&timeline_, "broker", leader, " led from ", Seconds(now - began_),
                          " to ");
          last_leader_ = leader;
        }
        last_led_at_ = now;
      }
    }
    absl::SleepFor(period_);
  }
}

int LeaderWatch::overlapping_sweeps() const {
  absl::MutexLock lock(&mu_);
  return overlapping_;
}
absl::Duration LeaderWatch::shortest_handover_gap() const {
  absl::MutexLock lock(&mu_);
  return shortest_gap_;
}
int LeaderWatch::handovers() const {
  absl::MutexLock lock(&mu_);
  return handovers_;
}
int LeaderWatch::leaderless_sweeps() const {
  absl::MutexLock lock(&mu_);
  return leaderless_;
}
int LeaderWatch::sweeps() const {
  absl::MutexLock lock(&mu_);
  return sweeps_;
}
std::vector<LeaderWatch::Term> LeaderWatch::Terms() const {
  absl::MutexLock lock(&mu_);
  return terms_;
}
std::string LeaderWatch::Timeline() const {
  absl::MutexLock lock(&mu_);
  return last_leader_ < 0 ? "no broker led"
                          : absl::StrCat(timeline_, Seconds(last_led_at_ - began_), " s");
}

absl::StatusOr<std::unique_ptr<HaMailCluster>> HaMailCluster::Start(
    HaMailClusterOptions options) {
  std::unique_ptr<HaMailCluster> cluster(new HaMailCluster());
  if (options.dir.empty()) options.dir = std::getenv("TEST_TMPDIR");
  cluster->options_ = options;
  absl::StatusOr<std::unique_ptr<Testbed>> testbed = Testbed::Start();
  if (!testbed.ok()) return testbed.status();
  cluster->testbed_ = *std::move(testbed);
  absl::StatusOr<std::unique_ptr<MtaMeter>> meter = MtaMeter::Attach(*cluster->testbed_);
  if (!meter.ok()) return meter.status();
  cluster->meter_ = *std::move(meter);
  // Both brokers are node "broker"; its certificate names where each is reached.
  std::vector<std::string> broker_names;
  for (const NetworkPlacement& placement : options.brokers) {
    if (placement.name != "localhost") broker_names.push_back(placement.name);
  }
  std::string nodes = absl::StrCat("broker:broker",
                                   broker_names.empty() ? "" : ":",
                                   absl::StrJoin(broker_names, ","), " portal:portal admin:admin");
  for (int i = 1; i <= options.psns; ++i) absl::StrAppend(&nodes, " psn", i, ":psn");
  // etcd on another host is reached over TLS (mailroom sends plain http:// only to loopback),
  // with a server certificate from the cluster CA that names its host.
  const bool etcd_tls = !options.etcd.netns.empty();
  if (etcd_tls) absl::StrAppend(&nodes, " etcd:broker:", options.etcd.name);
  const std::string certs = MakeTestCerts("certs", "mailroom cluster CA", nodes);
  EtcdTls tls;
  if (etcd_tls) tls = {certs + "/ca.pem", certs + "/etcd.pem", certs + "/etcd.key"};
  absl::StatusOr<std::unique_ptr<EtcdCluster>> etcd =
      EtcdCluster::Start(options.dir + "/etcd", 3, options.etcd, tls);
  if (!etcd.ok()) return etcd.status();
  cluster->etcd_ = *std::move(etcd);
  const std::string section = absl::StrCat(
      "send_limits { messages_per_minute: ", options.messages_per_minute,
      " max_connections: ", options.connections, " } ha { etcd_endpoints: [",
      cluster->etcd_->EndpointsForConfig(), "] lease_ttl { seconds: ",
      absl::ToInt64Seconds(options.ttl), " } advertised_address: \"$NAME:$PORT\"",
      etcd_tls ? absl::StrCat(" etcd_ca_file: \"", tls.ca_file, "\"") : "", " }");
  const Testbed& bed = *cluster->testbed_;
  // How the brokers reach the testbed: on loopback, or from other hosts by its listen name.
  const std::string remote = bed.Env("LISTEN_HOST");
  mailroom::broker::v1::SmtpSettings settings = BrokerHarness::TestbedSettings(bed);
  if (!remote.empty()) {
    settings.set_smtp_host(remote);
    settings.set_authority_host(bed.Env("LISTEN_TOKEN_URL_BASE"));
    // Named by its listen name from another host: checked against the testbed's CA, as the
    // multi-host test configures it.
    settings.mutable_authority_trust_store()->set_ca_file(bed.Env("CA_FILE"));
  }

  for (int i = 0; i < 2; ++i) {
    const std::string dir = absl::StrCat(options.dir, "/broker", i);
    if (i == 1) {
      // Settings are changed on the leader once it is elected; the standby gets its key and
      // sealed settings as the admin provisions it.
      absl::Status configured;
      for (const absl::Time deadline = absl::Now() + absl::Seconds(10); absl::Now() < deadline;) {
        configured = cluster->brokers_[0]->Configure(settings);
        if (configured.ok()) break;
        absl::SleepFor(absl::Milliseconds(200));
      }
      if (!configured.ok()) return configured;
      if (absl::Status s = cluster->brokers_[0]->ProvisionStandby(dir); !s.ok()) return s;
    }
    const NetworkPlacement& placement = options.brokers[i];
    const std::string metrics = absl::StrCat(placement.listen_host, ":", UnusedLoopbackPort());
    absl::StatusOr<std::unique_ptr<BrokerHarness>> broker = BrokerHarness::StartPlaced(
        placement, dir, certs,
        remote.empty() ? bed.Env("TOKEN_URL_BASE") : bed.Env("LISTEN_TOKEN_URL_BASE"), section,
        absl::StrCat("metrics_listen_address: \"", metrics, "\"",
                     // The test reads the gauge from its own host.
                     placement.netns.empty() ? "" : " metrics_allow_remote: true"));
    if (!broker.ok()) return broker.status();
    cluster->metrics_addresses_.push_back(metrics);
    cluster->brokers_.push_back(*std::move(broker));
  }
  cluster->watch_ = std::make_unique<LeaderWatch>(cluster->metrics_addresses_);
  if (cluster->AwaitLeads(0, absl::Seconds(10)) == absl::InfiniteDuration()) {
    return absl::UnavailableError("broker0 does not lead");
  }

  cluster->mailbox_ = bed.Env("MAILBOX");
  for (int i = 1; i <= options.psns; ++i) {
    const std::string name = absl::StrCat("psn", i);
    NodeSpec spec =
        GuestPsnSpec(name, absl::StrCat(options.dir, "/", name), certs, cluster->mailbox_);
    spec.broker_targets = {cluster->brokers_[0]->target(), cluster->brokers_[1]->target()};
    if (options.alternate_broker_order && i % 2 == 0) {
      std::swap(spec.broker_targets[0], spec.broker_targets[1]);
    }
    absl::StatusOr<std::unique_ptr<NodeHarness>> node = NodeHarness::Start(spec);
    if (!node.ok()) return node.status();
    cluster->psns_.push_back(*std::move(node));
  }
  return cluster;
}

std::vector<NodeHarness*> HaMailCluster::psns() {
  std::vector<NodeHarness*> out;
  for (std::unique_ptr<NodeHarness>& psn : psns_) out.push_back(psn.get());
  return out;
}

int HaMailCluster::Leader() const {
  for (size_t i = 0; i < brokers_.size(); ++i) {
    if (brokers_[i]->Health() == HealthCheckResponse::SERVING) return static_cast<int>(i);
  }
  return -1;
}

absl::Duration HaMailCluster::AwaitLeads(int i, absl::Duration timeout) const {
  const absl::Time began = absl::Now();
  while (absl::Now() < began + timeout) {
    if (brokers_[i]->Health() == HealthCheckResponse::SERVING) return absl::Now() - began;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::InfiniteDuration();
}

int HaMailCluster::AwaitAnyLeader(absl::Duration timeout) const {
  for (const absl::Time deadline = absl::Now() + timeout; absl::Now() < deadline;) {
    if (const int leader = Leader(); leader >= 0) return leader;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return -1;
}

HaMailCluster::Takeover HaMailCluster::KillLeader() {
  Takeover takeover;
  takeover.killed = Leader();
  if (takeover.killed < 0) return takeover;
  const int other = 1 - takeover.killed;
  takeover.at = absl::Now();
  brokers_[takeover.killed]->process().Kill();
  // Health says SERVING as the term starts; asked rather than a permit, which would take from
  // the mailbox's quota.
  takeover.after = AwaitLeads(other, absl::Seconds(15));
  if (takeover.after != absl::InfiniteDuration()) {
    takeover.leader = other;
    takeover.after = absl::Now() - takeover.at;
  }
  return takeover;
}

MtaCount HaMailCluster::Count(const std::string& to, const std::map<int, std::string>& acked,
                              absl::Duration timeout) {
  MtaCount count;
  std::map<std::string, int> copies;
  count.lost = AwaitDelivered(*testbed_, to, acked, timeout, &copies);
  count.distinct = static_cast<int>(copies.size());
  count.arrivals = meter_->Arrivals(mailbox_);
  count.most_in_minute = MostInWindow(count.arrivals, absl::Seconds(60));
  count.most_sessions = meter_->MostConcurrentSessions();
  return count;
}

std::vector<absl::Time> HaMailCluster::OfflineBatchTimes() const {
  std::vector<absl::Time> times;
  for (const std::unique_ptr<NodeHarness>& psn : psns_) {
    std::ifstream in(psn->log_path());
    for (std::string line; std::getline(in, line);) {
      if (!absl::StrContains(line, "on the cached token without a permit")) continue;
      // Each line starts with its time, e.g. "2026-12-06T22:08:27.872Z".
      absl::Time time;
      std::string error;
      if (absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", line.substr(0, line.find(' ')),
                          absl::UTCTimeZone(), &time, &error)) {
        times.push_back(time);
      }
    }
  }
  std::sort(times.begin(), times.end());
  return times;
}

}  // namespace mailroom::testing
