#include "tests/testing/etcd_cluster.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/rpc/http_transport.h"
#include "tests/testing/testbed.h"

namespace mailroom::testing {
namespace {

constexpr char kEtcd[] = "/usr/bin/etcd";

// Whether the member at `url` answers a linearizable read (which needs a leader).
bool Serves(const std::string& url, const std::string& ca_file) {
  CurlHttpTransport::Options options;
  options.ca_file = ca_file;
  CurlHttpTransport transport(options);
  HttpRequest request;
  request.url = url + "/v3/kv/range";
  request.form_body = R"({"key":"L2hlYWx0aA=="})";  // "/health"
  request.headers.emplace_back("Content-Type", "application/json");
  request.timeout = absl::Seconds(1);
  absl::StatusOr<HttpResponse> response = transport.PostForm(request);
  return response.ok() && response->status == 200;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(const std::string& dir,
                                                                 int size,
                                                                 NetworkPlacement placement,
                                                                 EtcdTls tls) {
  if (access(kEtcd, X_OK) != 0) {
    return absl::FailedPreconditionError("no /usr/bin/etcd: run tools/setup.sh (etcd-server)");
  }
  std::unique_ptr<EtcdCluster> cluster(new EtcdCluster());
  cluster->dir_ = dir;
  cluster->placement_ = std::move(placement);
  cluster->tls_ = std::move(tls);
  mkdir(dir.c_str(), 0700);
  std::vector<std::string> peers;
  for (int i = 0; i < size; ++i) {
    Member member;
    member.name = absl::StrCat("etcd", i);
    member.client_port = UnusedLoopbackPort();
    member.peer_port = UnusedLoopbackPort();
    peers.push_back(absl::StrCat(member.name, "=", cluster->ListenUrl(member.peer_port, false)));
    cluster->members_.push_back(std::move(member));
  }
  cluster->initial_cluster_ = absl::StrJoin(peers, ",");
  for (int i = 0; i < size; ++i) cluster->Launch(i);
  absl::Status healthy = cluster->AwaitHealthy();
  if (!healthy.ok()) return healthy;
  return cluster;
}

EtcdCluster::~EtcdCluster() {
  for (Member& member : members_) {
    if (member.process != nullptr) member.process->Kill();
  }
}

void EtcdCluster::Launch(int i) {
  Member& member = members_[i];
  const std::string peer = ListenUrl(member.peer_port, false);
  std::vector<std::string> argv = {
      kEtcd, "--name", member.name, "--data-dir", absl::StrCat(dir_, "/", member.name),
      "--listen-client-urls", ListenUrl(member.client_port, true),
      "--advertise-client-urls", ClientUrl(member.client_port),
      "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
      "--initial-cluster", initial_cluster_, "--initial-cluster-state", "new",
      "--initial-cluster-token", "mailroom-test", "--heartbeat-interval", "100",
      "--election-timeout", "1000", "--log-level", "warn"};
  if (!tls_.cert_file.empty()) {
    argv.insert(argv.end(), {"--cert-file", tls_.cert_file, "--key-file", tls_.key_file});
  }
  member.process = std::make_unique<ChildProcess>(PlacedCommand(placement_, std::move(argv)),
                                                  absl::StrCat(dir_, "/", member.name, ".log"));
}

std::string EtcdCluster::ListenUrl(int port, bool client) const {
  const bool tls = client && !tls_.cert_file.empty();
  return absl::StrCat(tls ? "https://" : "http://", placement_.listen_host, ":", port);
}

std::string EtcdCluster::ClientUrl(int port) const {
  if (tls_.cert_file.empty()) return ListenUrl(port, true);
  return absl::StrCat("https://", placement_.name, ":", port);
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> urls;
  for (const Member& member : members_) urls.push_back(ClientUrl(member.client_port));
  return urls;
}

std::string EtcdCluster::EndpointsForConfig() const {
  std::vector<std::string> quoted;
  for (const std::string& url : endpoints()) quoted.push_back(absl::StrCat("\"", url, "\""));
  return absl::StrJoin(quoted, ", ");
}

void EtcdCluster::Kill(int member) {
  if (members_[member].process != nullptr) members_[member].process->Kill();
}

void EtcdCluster::Stop(int member) {
  if (members_[member].process != nullptr) members_[member].process->Terminate();
}

void EtcdCluster::Freeze(int member) {
  if (members_[member].process != nullptr) kill(members_[member].process->pid(), SIGSTOP);
}

void EtcdCluster::Thaw(int member) {
  if (members_[member].process != nullptr) kill(members_[member].process->pid(), SIGCONT);
}

absl::Status EtcdCluster::Restart(int member) {
  Launch(member);
  return AwaitHealthy();
}

absl::Status EtcdCluster::AwaitHealthy(absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  for (const Member& member : members_) {
    if (member.process == nullptr || !member.process->running()) continue;
    while (!Serves(ClientUrl(member.client_port), tls_.ca_file)) {
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("etcd member ", member.name, " did not serve; see ", dir_, "/",
                         member.name, ".log"));
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  return absl::OkStatus();
}

}  // namespace mailroom::testing
