// Provides GrpcServer, which runs a node's gRPC services over mutual TLS with the standard
// health service (grpc.health.v1) and server reflection, and shuts down gracefully; and
// TerminationSignals, which turns SIGTERM/SIGINT into an orderly shutdown in `main`.
// GrpcServer is thread-safe.
#ifndef MAILROOM_COMMON_GRPC_SERVER_H_
#define MAILROOM_COMMON_GRPC_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mailroom {

class GrpcServer {
 public:
  struct Options {
    // host:port; port 0 picks a free port (see port()).
    std::string listen_address;
    std::shared_ptr<grpc::ServerCredentials> credentials;
    // Not owned; must outlive the server.
    std::vector<grpc::Service*> services;
    // Serve gRPC server reflection (every service's schema) to any cluster certificate:
    // for debugging with grpcurl only, off by default.
    bool reflection = false;
    // Whether the health service starts at SERVING; a standby broker starts NOT_SERVING and
    // reports SERVING while it leads (SetServing).
    bool start_serving = true;
  };

  explicit GrpcServer(Options options);
  ~GrpcServer();

  // Binds and starts serving; the health service then reports SERVING.
  absl::Status Start();
  // The bound port, valid after Start().
  int port() const { return port_; }

  // Sets what the health service reports (all services); ignored after Shutdown.
  void SetServing(bool serving);

  // Reports NOT_SERVING (so load balancers and probes stop sending), lets in-flight calls
  // finish for up to `grace`, then cancels what remains. Idempotent.
  void Shutdown(absl::Duration grace);
  // Blocks until the server has shut down.
  void Wait();

 private:
  Options options_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

// SIGTERM and SIGINT, delivered synchronously. Call Block() first thing in `main`, before
// any thread starts, so every thread inherits the mask; then Wait() where the process
// should stop.
class TerminationSignals {
 public:
  static void Block();
  // Returns the signal number received.
  static int Wait();
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_GRPC_SERVER_H_
