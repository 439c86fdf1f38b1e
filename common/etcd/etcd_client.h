// Provides EtcdClient, mailroom's client of etcd's v3 API through etcd's JSON gRPC gateway (POST
// /v3/kv/..., /v3/lease/...) over an injected HttpTransport (libcurl in `main`, with TLS and a
// client certificate where etcd asks for one; a fake in tests). It speaks the messages of
// proto/mailroom/etcd/gateway/etcd_gateway.proto: Put, Range, DeleteRange, Txn with compares,
// LeaseGrant, LeaseKeepAlive, LeaseRevoke, Maintenance.Status of one member, and the helpers that
// leader election builds on (CreateIfAbsent, PutIfHeld, DeleteIfHeld: transactions that compare a
// key's lease and create_revision). Requests go to one member at a time; a member that cannot be
// reached, or that answers UNAVAILABLE (no leader, not ready), is left for the next in the list,
// and the client stays on the member that answered. Errors are absl::Status with the gRPC code etcd
// returned (NOT_FOUND for a lease that is gone). Thread-safe.
#ifndef MAILROOM_COMMON_ETCD_ETCD_CLIENT_H_
#define MAILROOM_COMMON_ETCD_ETCD_CLIENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "common/rpc/http_transport.h"
#include "proto/mailroom/etcd/gateway/etcd_gateway.pb.h"

namespace mailroom::etcd {

namespace gw = ::mailroom::etcd::gateway;

struct EtcdClientOptions {
  // Client URLs of the members, e.g. "https://10.0.0.1:2379" (plain http only to loopback).
  std::vector<std::string> endpoints;
  // Per request to one member.
  absl::Duration request_timeout = absl::Seconds(2);
};

// What proves that a key is still held: the lease it was created with and its
// create_revision (a key deleted and created again by someone else has a new one).
struct KeyHold {
  int64_t lease = 0;
  int64_t create_revision = 0;
};

class EtcdClient {
 public:
  // `transport` must outlive the client. `options.endpoints` must not be empty.
  EtcdClient(EtcdClientOptions options, HttpTransport* transport);

  absl::StatusOr<gw::PutResponse> Put(const gw::PutRequest& request);
  absl::StatusOr<gw::RangeResponse> Range(const gw::RangeRequest& request);
  absl::StatusOr<gw::DeleteRangeResponse> DeleteRange(const gw::DeleteRangeRequest& request);
  absl::StatusOr<gw::TxnResponse> Txn(const gw::TxnRequest& request);

  // A lease of `ttl` (whole seconds, at least 1) and the TTL etcd granted.
  absl::StatusOr<gw::LeaseGrantResponse> LeaseGrant(absl::Duration ttl);
  // Renews `lease` once; returns its new TTL. NOT_FOUND if the lease has expired or was
  // revoked.
  absl::StatusOr<absl::Duration> LeaseKeepAlive(int64_t lease);
  // Revokes `lease`, deleting its keys. A lease already gone is not an error.
  absl::Status LeaseRevoke(int64_t lease);

  // The key's current value, or nullopt if it does not exist.
  absl::StatusOr<absl::optional<gw::KeyValue>> Get(absl::string_view key);
  // Creates `key` = `value` attached to `lease` (0: none) if no such key exists. Returns the
  // hold on success, or nullopt if the key exists (with `*existing` set when not null).
  absl::StatusOr<absl::optional<KeyHold>> CreateIfAbsent(absl::string_view key,
                                                         absl::string_view value,
                                                         int64_t lease,
                                                         gw::KeyValue* existing = nullptr);
  // Writes `key` = `value` (keeping the hold's lease) only while `hold` still holds it;
  // returns whether it did.
  absl::StatusOr<bool> PutIfHeld(absl::string_view key, absl::string_view value,
                                 const KeyHold& hold);
  // Deletes `key` only while `hold` still holds it; returns whether it did.
  absl::StatusOr<bool> DeleteIfHeld(absl::string_view key, const KeyHold& hold);
  // Writes `key` = `value` (no lease) only while `hold` still holds `guard_key` (a leader's
  // fenced write under its election key); returns whether it did.
  absl::StatusOr<bool> PutWhileHeld(absl::string_view key, absl::string_view value,
                                    absl::string_view guard_key, const KeyHold& hold);

  // One member's status, asked of `endpoint` only (no failover: the answer is about it),
  // within `timeout`.
  absl::StatusOr<gw::StatusResponse> MemberStatus(const std::string& endpoint,
                                                  absl::Duration timeout);

  // The member the next request goes to first.
  std::string current_endpoint();
  const std::vector<std::string>& endpoints() const { return options_.endpoints; }

 private:
  // POSTs `request` as JSON to `path` on the current member, failing over; parses the
  // answer into `response`.
  absl::Status Call(absl::string_view path, const google::protobuf::Message& request,
                    google::protobuf::Message* response);
  // Call() for an answer of type `Response` (defined in etcd_client.cc, its only user).
  template <typename Response>
  absl::StatusOr<Response> Call(absl::string_view path, const google::protobuf::Message& request);
  // One attempt at one member: its answer parsed into `response`, or the error.
  absl::Status CallMember(const std::string& endpoint, absl::string_view path,
                          const std::string& body, absl::Duration timeout,
                          google::protobuf::Message* response);

  const EtcdClientOptions options_;
  HttpTransport* transport_;
  absl::Mutex mu_;
  size_t current_ ABSL_GUARDED_BY(mu_) = 0;
};

// The compares that `hold` still holds `key`: its lease and its create_revision are equal.
void AddHoldCompares(absl::string_view key, const KeyHold& hold, gw::TxnRequest* txn);

}  // namespace mailroom::etcd

#endif  // MAILROOM_COMMON_ETCD_ETCD_CLIENT_H_
