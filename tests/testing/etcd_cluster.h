// Provides EtcdCluster, a real etcd cluster for end-to-end tests: `size` members of Debian's
// /usr/bin/etcd (3.4, v3 API) on free loopback ports, each with its data directory under the
// test's directory, its output in a log there; members can be killed, stopped and started
// again with their data. Nothing here uses a system etcd service. Not thread-safe.
#ifndef MAILROOM_TESTS_TESTING_ETCD_CLUSTER_H_
#define MAILROOM_TESTS_TESTING_ETCD_CLUSTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testing/process.h"

namespace mailroom::testing {

// TLS on the members' client URLs (https://, the server certificate naming the placement's
// name); clients check it against `ca_file`. Plain http:// is left to loopback: mailroom's HTTP
// transport sends nothing else in clear.
struct EtcdTls {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

class EtcdCluster {
 public:
  // Starts the members and waits until the cluster serves linearizable reads. With a
  // `placement`, every member runs in its namespace and listens on its listen_host.
  static absl::StatusOr<std::unique_ptr<EtcdCluster>> Start(const std::string& dir,
                                                             int size = 3,
                                                             NetworkPlacement placement = {},
                                                             EtcdTls tls = {});
  ~EtcdCluster();

  // Client URLs ("http://127.0.0.1:PORT"; with TLS "https://NAME:PORT", the placement's
  // name), one a member.
  std::vector<std::string> endpoints() const;
  // The endpoints as a text-format list for a config: "\"http://...\", \"http://...\"".
  std::string EndpointsForConfig() const;
  int size() const { return static_cast<int>(members_.size()); }

  void Kill(int member);
  void Stop(int member);
  // SIGSTOP / SIGCONT: a frozen member keeps its connections but answers nothing, as a hung or
  // cut-off host does (a stopped one refuses connections at once).
  void Freeze(int member);
  void Thaw(int member);
  // Starts a stopped or killed member again with its data.
  absl::Status Restart(int member);
  // Waits until every running member answers a linearizable read.
  absl::Status AwaitHealthy(absl::Duration timeout = absl::Seconds(20)) const;

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    std::unique_ptr<ChildProcess> process;
  };
  EtcdCluster() = default;
  void Launch(int member);

  // Where a member listens on `port`, and where clients reach it.
  std::string ListenUrl(int port, bool client) const;
  std::string ClientUrl(int port) const;

  NetworkPlacement placement_;
  EtcdTls tls_;
  std::string dir_;
  std::string initial_cluster_;
  std::vector<Member> members_;
};

}  // namespace mailroom::testing

#endif  // MAILROOM_TESTS_TESTING_ETCD_CLUSTER_H_
