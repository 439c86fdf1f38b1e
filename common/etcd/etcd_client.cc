#include "common/etcd/etcd_client.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/status_macros.h"
#include "google/protobuf/util/json_util.h"

namespace mailroom::etcd {
namespace {

absl::StatusCode CodeOf(int grpc_code) {
  // etcd's gateway reports the gRPC code; absl shares the canonical numbering 0..16.
  if (grpc_code <= 0 || grpc_code > 16) return absl::StatusCode::kUnknown;
  return static_cast<absl::StatusCode>(grpc_code);
}

absl::Status ParseJson(absl::string_view json, google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), message, options);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("etcd gateway: unreadable answer: ",
                                            status.message().as_string()));
  }
  return absl::OkStatus();
}

// The error a non-200 answer carries.
absl::Status ErrorOf(const HttpResponse& response) {
  gw::GatewayError error;
  if (ParseJson(response.body, &error).ok() && error.code() != 0) {
    return absl::Status(CodeOf(error.code()), absl::StrCat("etcd: ", error.message().empty()
                                                                         ? error.error()
                                                                         : error.message()));
  }
  const absl::StatusCode code = response.status == 503 || response.status == 502
                                    ? absl::StatusCode::kUnavailable
                                    : absl::StatusCode::kUnknown;
  return absl::Status(code, absl::StrCat("etcd gateway: HTTP ", response.status));
}

// Errors after which another member may do better.
bool TryAnotherMember(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kDeadlineExceeded;
}

// The JSON a request is sent as: etcd's own field names, as its gateway reads them.
absl::StatusOr<std::string> EncodeRequest(const google::protobuf::Message& request) {
  google::protobuf::util::JsonPrintOptions print;
  print.preserve_proto_field_names = true;
  std::string body;
  if (!google::protobuf::util::MessageToJsonString(request, &body, print).ok()) {
    return absl::InternalError("etcd: cannot encode the request");
  }
  return body;
}

}  // namespace

void AddHoldCompares(absl::string_view key, const KeyHold& hold, gw::TxnRequest* txn) {
  gw::Compare* lease = txn->add_compare();
  lease->set_key(std::string(key));
  lease->set_target(gw::Compare::LEASE);
  lease->set_result(gw::Compare::EQUAL);
  lease->set_lease(hold.lease);
  gw::Compare* created = txn->add_compare();
  created->set_key(std::string(key));
  created->set_target(gw::Compare::CREATE);
  created->set_result(gw::Compare::EQUAL);
  created->set_create_revision(hold.create_revision);
}

// Adds a put of `key` = `value`, attached to `lease` (0: none), to `txn`'s success branch.
void AddPut(absl::string_view key, absl::string_view value, int64_t lease, gw::TxnRequest* txn) {
  gw::PutRequest* put = txn->add_success()->mutable_request_put();
  put->set_key(std::string(key));
  put->set_value(std::string(value));
  put->set_lease(lease);
}

// The transaction that puts `key` = `value` (attached to `lease`, 0: none) only while `hold`
// still holds `guard_key`.
gw::TxnRequest GuardedPut(absl::string_view guard_key, const KeyHold& hold,
                          absl::string_view key, absl::string_view value, int64_t lease) {
  gw::TxnRequest txn;
  AddHoldCompares(guard_key, hold, &txn);
  AddPut(key, value, lease, &txn);
  return txn;
}

EtcdClient::EtcdClient(EtcdClientOptions options, HttpTransport* transport)
    : options_(std::move(options)), transport_(transport) {}

std::string EtcdClient::current_endpoint() {
  absl::MutexLock lock(&mu_);
  return options_.endpoints.empty() ? "" : options_.endpoints[current_];
}

absl::Status EtcdClient::CallMember(const std::string& endpoint, absl::string_view path,
                                    const std::string& body, absl::Duration timeout,
                                    google::protobuf::Message* response) {
  HttpRequest request;
  request.url = absl::StrCat(absl::StripSuffix(endpoint, "/"), path);
  request.form_body = body;
  request.headers.emplace_back("Content-Type", "application/json");
  request.timeout = timeout;
  MR_ASSIGN_OR_RETURN(HttpResponse answer, transport_->PostForm(request));
  if (answer.status != 200) return ErrorOf(answer);
  // A streaming answer (LeaseKeepAlive) is one JSON object a line; the first is ours.
  absl::string_view first_line = answer.body;
  first_line = first_line.substr(0, first_line.find('\n'));
  return ParseJson(first_line, response);
}

absl::Status EtcdClient::Call(absl::string_view path, const google::protobuf::Message& request,
                              google::protobuf::Message* response) {
  if (options_.endpoints.empty()) return absl::FailedPreconditionError("etcd: no endpoints");
  MR_ASSIGN_OR_RETURN(const std::string body, EncodeRequest(request));
  size_t first;
  {
    absl::MutexLock lock(&mu_);
    first = current_;
  }
  absl::Status last;
  for (size_t i = 0; i < options_.endpoints.size(); ++i) {
    const size_t index = (first + i) % options_.endpoints.size();
    const std::string& endpoint = options_.endpoints[index];
    last = CallMember(endpoint, path, body, options_.request_timeout, response);
    if (last.ok()) {
      absl::MutexLock lock(&mu_);
      current_ = index;
      return last;
    }
    if (!TryAnotherMember(last)) return last;
    last = absl::Status(last.code(), absl::StrCat(endpoint, path, ": ", last.message()));
  }
  return last;
}

template <typename Response>
absl::StatusOr<Response> EtcdClient::Call(absl::string_view path,
                                          const google::protobuf::Message& request) {
  Response response;
  MR_RETURN_IF_ERROR(Call(path, request, &response));
  return response;
}

absl::StatusOr<gw::StatusResponse> EtcdClient::MemberStatus(const std::string& endpoint,
                                                            absl::Duration timeout) {
  MR_ASSIGN_OR_RETURN(const std::string body, EncodeRequest(gw::StatusRequest()));
  gw::StatusResponse response;
  MR_RETURN_IF_ERROR(CallMember(endpoint, "/v3/maintenance/status", body, timeout, &response));
  return response;
}

absl::StatusOr<gw::PutResponse> EtcdClient::Put(const gw::PutRequest& request) {
  return Call<gw::PutResponse>("/v3/kv/put", request);
}

absl::StatusOr<gw::RangeResponse> EtcdClient::Range(const gw::RangeRequest& request) {
  return Call<gw::RangeResponse>("/v3/kv/range", request);
}

absl::StatusOr<gw::DeleteRangeResponse> EtcdClient::DeleteRange(
    const gw::DeleteRangeRequest& request) {
  return Call<gw::DeleteRangeResponse>("/v3/kv/deleterange", request);
}

absl::StatusOr<gw::TxnResponse> EtcdClient::Txn(const gw::TxnRequest& request) {
  return Call<gw::TxnResponse>("/v3/kv/txn", request);
}

absl::StatusOr<gw::LeaseGrantResponse> EtcdClient::LeaseGrant(absl::Duration ttl) {
  gw::LeaseGrantRequest request;
  request.set_ttl(std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(ttl, absl::Seconds(1)))));
  MR_ASSIGN_OR_RETURN(gw::LeaseGrantResponse response,
                      Call<gw::LeaseGrantResponse>("/v3/lease/grant", request));
  if (!response.error().empty()) {
    return absl::UnavailableError(absl::StrCat("etcd: lease grant: ", response.error()));
  }
  return response;
}

absl::StatusOr<absl::Duration> EtcdClient::LeaseKeepAlive(int64_t lease) {
  gw::LeaseKeepAliveRequest request;
  request.set_id(lease);
  MR_ASSIGN_OR_RETURN(gw::LeaseKeepAliveStreamMessage message,
                      Call<gw::LeaseKeepAliveStreamMessage>("/v3/lease/keepalive", request));
  if (message.has_error()) {
    return absl::Status(CodeOf(message.error().code()),
                        absl::StrCat("etcd: keepalive: ", message.error().message()));
  }
  if (message.result().ttl() <= 0) {
    return absl::NotFoundError(absl::StrCat("etcd: lease ", lease, " has expired"));
  }
  return absl::Seconds(message.result().ttl());
}

absl::Status EtcdClient::LeaseRevoke(int64_t lease) {
  gw::LeaseRevokeRequest request;
  request.set_id(lease);
  absl::Status status = Call<gw::LeaseRevokeResponse>("/v3/lease/revoke", request).status();
  if (status.code() == absl::StatusCode::kNotFound) return absl::OkStatus();
  return status;
}

absl::StatusOr<absl::optional<gw::KeyValue>> EtcdClient::Get(absl::string_view key) {
  gw::RangeRequest request;
  request.set_key(std::string(key));
  MR_ASSIGN_OR_RETURN(gw::RangeResponse response, Range(request));
  if (response.kvs_size() == 0) return absl::optional<gw::KeyValue>();
  return absl::optional<gw::KeyValue>(response.kvs(0));
}

absl::StatusOr<absl::optional<KeyHold>> EtcdClient::CreateIfAbsent(absl::string_view key,
                                                                   absl::string_view value,
                                                                   int64_t lease,
                                                                   gw::KeyValue* existing) {
  gw::TxnRequest txn;
  gw::Compare* absent = txn.add_compare();
  absent->set_key(std::string(key));
  absent->set_target(gw::Compare::CREATE);
  absent->set_result(gw::Compare::EQUAL);
  absent->set_create_revision(0);
  AddPut(key, value, lease, &txn);
  txn.add_failure()->mutable_request_range()->set_key(std::string(key));
  MR_ASSIGN_OR_RETURN(gw::TxnResponse response, Txn(txn));
  if (response.succeeded()) {
    // The put is the transaction's only write: the key was created at its revision.
    return absl::optional<KeyHold>(KeyHold{lease, response.header().revision()});
  }
  if (existing != nullptr) {
    *existing = gw::KeyValue();
    if (response.responses_size() > 0 &&
        response.responses(0).response_range().kvs_size() > 0) {
      *existing = response.responses(0).response_range().kvs(0);
    }
  }
  return absl::optional<KeyHold>();
}

absl::StatusOr<bool> EtcdClient::PutIfHeld(absl::string_view key, absl::string_view value,
                                           const KeyHold& hold) {
  MR_ASSIGN_OR_RETURN(gw::TxnResponse response,
                      Txn(GuardedPut(key, hold, key, value, hold.lease)));
  return response.succeeded();
}

absl::StatusOr<bool> EtcdClient::DeleteIfHeld(absl::string_view key, const KeyHold& hold) {
  gw::TxnRequest txn;
  AddHoldCompares(key, hold, &txn);
  txn.add_success()->mutable_request_delete_range()->set_key(std::string(key));
  MR_ASSIGN_OR_RETURN(gw::TxnResponse response, Txn(txn));
  return response.succeeded();
}

absl::StatusOr<bool> EtcdClient::PutWhileHeld(absl::string_view key, absl::string_view value,
                                              absl::string_view guard_key,
                                              const KeyHold& hold) {
  MR_ASSIGN_OR_RETURN(gw::TxnResponse response,
                      Txn(GuardedPut(guard_key, hold, key, value, /*lease=*/0)));
  return response.succeeded();
}

}  // namespace mailroom::etcd
