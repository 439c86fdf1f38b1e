// Load generator for the token broker: M concurrent clients, each on its own mutual-TLS
// channel with a role node's certificate, make N calls in total: GetAccessToken (--rpc=token),
// or a send permit for one message, released at once (--rpc=permit: AcquireSendPermit on the
// client's own connection id, then ReleaseSendPermit closing it; the pair is timed as one
// call, and the broker needs send_limits that leave room for M connections). Prints calls/s
// and latency percentiles as one line of key=value pairs.
//
//   token_broker_load --target=localhost:7100 --certs=DIR --node=psn1 --clients=8 --calls=10000
#include <algorithm>
#include <atomic>
#include <iostream>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/rpc/tls.h"
#include "proto/mailroom/broker/v1/broker.grpc.pb.h"

ABSL_FLAG(std::string, target, "", "broker host:port");
ABSL_FLAG(std::string, certs, "", "gen-certs.sh directory");
ABSL_FLAG(std::string, node, "psn1", "node certificate to call as");
ABSL_FLAG(int, clients, 8, "concurrent clients (one channel each)");
ABSL_FLAG(int, calls, 10000, "total calls");
ABSL_FLAG(std::string, rpc, "token", "token (GetAccessToken) or permit (Acquire + Release)");

namespace {

namespace v1 = mailroom::broker::v1;

// One GetAccessToken; true if a token came back.
bool CallToken(v1::TokenBroker::Stub& stub, const std::string& node) {
  v1::GetAccessTokenRequest request;
  request.set_node(node);
  grpc::ClientContext context;
  v1::GetAccessTokenResponse response;
  return stub.GetAccessToken(&context, request, &response).ok() &&
         !response.access_token().empty();
}

// A permit for one message on `connection_id`, then its release; true if both succeeded.
bool CallPermit(v1::TokenBroker::Stub& stub, const std::string& node,
                const std::string& connection_id) {
  v1::AcquireSendPermitRequest acquire;
  acquire.set_node(node);
  acquire.set_connection_id(connection_id);
  acquire.add_message_recipient_counts(1);
  v1::AcquireSendPermitResponse permit;
  {
    grpc::ClientContext context;
    if (!stub.AcquireSendPermit(&context, acquire, &permit).ok() || !permit.granted()) {
      return false;
    }
  }
  v1::ReleaseSendPermitRequest release;
  release.set_node(node);
  release.set_permit_id(permit.permit_id());
  release.set_connection_id(connection_id);
  release.set_connection_closed(true);
  v1::ReleaseSendPermitResponse released;
  grpc::ClientContext context;
  return stub.ReleaseSendPermit(&context, release, &released).ok();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string rpc = absl::GetFlag(FLAGS_rpc);
  if (rpc != "token" && rpc != "permit") {
    std::cerr << "--rpc: token or permit\n";
    return 2;
  }
  const std::string certs = absl::GetFlag(FLAGS_certs);
  const std::string node = absl::GetFlag(FLAGS_node);
  const int clients = std::max(1, absl::GetFlag(FLAGS_clients));
  const int calls = std::max(clients, absl::GetFlag(FLAGS_calls));
  auto credentials = mailroom::MakeChannelCredentials(
      {certs + "/ca.pem", certs + "/" + node + ".pem", certs + "/" + node + ".key"},
      mailroom::Role::kBroker);
  if (!credentials.ok()) {
    std::cerr << credentials.status() << "\n";
    return 2;
  }
  std::vector<std::vector<double>> latencies(clients);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  // Connect every channel first so the handshake is not timed as part of the calls.
  std::vector<std::unique_ptr<v1::TokenBroker::Stub>> stubs;
  for (int c = 0; c < clients; ++c) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection per client
    auto channel = grpc::CreateCustomChannel(absl::GetFlag(FLAGS_target), *credentials, args);
    channel->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    stubs.push_back(v1::TokenBroker::NewStub(channel));
  }
  const absl::Time start = absl::Now();
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      const int mine = calls / clients + (c < calls % clients ? 1 : 0);
      latencies[c].reserve(mine);
      const std::string connection_id = absl::StrCat("bench-", c);
      for (int i = 0; i < mine; ++i) {
        const absl::Time t0 = absl::Now();
        const bool ok = rpc == "token" ? CallToken(*stubs[c], node)
                                       : CallPermit(*stubs[c], node, connection_id);
        latencies[c].push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
        if (!ok) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all[std::min(all.size() - 1, size_t(p * all.size()))] / 1000.0; };
  std::cout << absl::StrFormat(
      "clients=%d calls=%d failures=%d seconds=%.2f calls_per_s=%.0f p50_ms=%.3f p99_ms=%.3f "
      "max_ms=%.3f\n",
      clients, calls, failures.load(), seconds, calls / seconds, pct(0.50), pct(0.99),
      all.back() / 1000.0);
  return failures.load() == 0 ? 0 : 1;
}
