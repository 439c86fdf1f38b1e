#include "common/etcd/etcd_client.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_http_transport.h"

namespace mailroom::etcd {
namespace {

using ::mailroom::testing::FakeHttpTransport;
using ::testing::HasSubstr;

std::string B64(absl::string_view text) { return absl::Base64Escape(text); }

class EtcdClientTest : public ::testing::Test {
 protected:
  EtcdClientOptions Options() {
    EtcdClientOptions options;
    options.endpoints = {"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"};
    return options;
  }
  FakeHttpTransport transport_;
};

TEST_F(EtcdClientTest, PutSendsBase64JsonToTheGateway) {
  EtcdClient client(Options(), &transport_);
  transport_.EnqueueJson(200, R"({"header":{"revision":"7"}})");
  gw::PutRequest put;
  put.set_key("/mailroom/k");
  put.set_value("v");
  put.set_lease(42);
  absl::StatusOr<gw::PutResponse> response = client.Put(put);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->header().revision(), 7);
  ASSERT_EQ(transport_.request_count(), 1);
  const HttpRequest request = transport_.requests()[0];
  EXPECT_EQ(request.url, "http://127.0.0.1:1/v3/kv/put");
  EXPECT_THAT(request.form_body, HasSubstr(B64("/mailroom/k")));
  EXPECT_THAT(request.form_body, HasSubstr(R"("lease":"42")"));
  bool json = false;
  for (const auto& [name, value] : request.headers) {
    json |= name == "Content-Type" && value == "application/json";
  }
  EXPECT_TRUE(json);
}

TEST_F(EtcdClientTest, CreateIfAbsentComparesCreateRevisionZero) {
  EtcdClient client(Options(), &transport_);
  transport_.EnqueueJson(200, R"({"header":{"revision":"12"},"succeeded":true})");
  absl::StatusOr<absl::optional<KeyHold>> hold = client.CreateIfAbsent("/e", "me", 99);
  ASSERT_TRUE(hold.ok()) << hold.status();
  ASSERT_TRUE(hold->has_value());
  EXPECT_EQ((*hold)->lease, 99);
  EXPECT_EQ((*hold)->create_revision, 12);
  const std::string body = transport_.requests()[0].form_body;
  EXPECT_EQ(transport_.requests()[0].url, "http://127.0.0.1:1/v3/kv/txn");
  // The oneof's zero must be on the wire: without it etcd would compare version = 0.
  EXPECT_THAT(body, HasSubstr(R"("create_revision":"0")"));
  EXPECT_THAT(body, HasSubstr(R"("target":"CREATE")"));
}

TEST_F(EtcdClientTest, CreateIfAbsentReportsTheHolder) {
  EtcdClient client(Options(), &transport_);
  transport_.EnqueueJson(
      200, absl::StrCat(R"({"header":{"revision":"12"},"responses":[{"response_range":)",
                        R"({"kvs":[{"key":")", B64("/e"), R"(","value":")", B64("other:1"),
                        R"(","lease":"5","create_revision":"3"}]}}]})"));
  gw::KeyValue existing;
  absl::StatusOr<absl::optional<KeyHold>> hold = client.CreateIfAbsent("/e", "me", 99, &existing);
  ASSERT_TRUE(hold.ok()) << hold.status();
  EXPECT_FALSE(hold->has_value());
  EXPECT_EQ(existing.value(), "other:1");
  EXPECT_EQ(existing.lease(), 5);
}

TEST_F(EtcdClientTest, PutIfHeldComparesLeaseAndCreateRevision) {
  EtcdClient client(Options(), &transport_);
  transport_.EnqueueJson(200, R"({"header":{"revision":"13"}})");
  absl::StatusOr<bool> put = client.PutIfHeld("/e", "me", KeyHold{99, 12});
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_FALSE(*put);
  const std::string body = transport_.requests()[0].form_body;
  EXPECT_THAT(body, HasSubstr(R"("target":"LEASE")"));
  EXPECT_THAT(body, HasSubstr(R"("lease":"99")"));
  EXPECT_THAT(body, HasSubstr(R"("create_revision":"12")"));
}

TEST_F(EtcdClientTest, FailsOverToTheNextMemberAndStaysThere) {
  EtcdClient client(Options(), &transport_);
  transport_.Enqueue(WithTransportFailure(absl::UnavailableError("refused"),
                                          TransportFailure::kConnectRefused));
  transport_.EnqueueJson(503, R"({"error":"etcdserver: no leader","code":14,"message":"etcdserver: no leader"})");
  transport_.EnqueueJson(200, R"({"header":{"revision":"3"},"ID":"77","TTL":"3"})");
  absl::StatusOr<gw::LeaseGrantResponse> lease = client.LeaseGrant(absl::Seconds(3));
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(lease->id(), 77);
  std::vector<HttpRequest> requests = transport_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[2].url, "http://127.0.0.1:3/v3/lease/grant");
  EXPECT_EQ(client.current_endpoint(), "http://127.0.0.1:3");
  transport_.EnqueueJson(200, R"({"result":{"ID":"77","TTL":"3"}})");
  ASSERT_TRUE(client.LeaseKeepAlive(77).ok());
  EXPECT_EQ(transport_.requests()[3].url, "http://127.0.0.1:3/v3/lease/keepalive");
}

TEST_F(EtcdClientTest, AllMembersDownIsUnavailable) {
  EtcdClient client(Options(), &transport_);
  transport_.Enqueue(absl::UnavailableError("refused"));
  absl::StatusOr<absl::optional<gw::KeyValue>> got = client.Get("/x");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(transport_.request_count(), 3);
}

TEST_F(EtcdClientTest, ErrorsOtherThanUnavailableAreNotRetried) {
  EtcdClient client(Options(), &transport_);
  transport_.EnqueueJson(400, R"({"error":"etcdserver: key is not provided","code":3,"message":"etcdserver: key is not provided"})");
  absl::StatusOr<gw::PutResponse> put = client.Put(gw::PutRequest());
  EXPECT_EQ(put.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(put.status().message(), HasSubstr("key is not provided"));
  EXPECT_EQ(transport_.request_count(), 1);
}

TEST_F(EtcdClientTest, KeepAliveOfAnExpiredLeaseIsNotFound) {
  EtcdClient client(Options(), &transport_);
  transport_.EnqueueJson(200, "{\"result\":{\"ID\":\"77\"}}\n");
  EXPECT_EQ(client.LeaseKeepAlive(77).status().code(), absl::StatusCode::kNotFound);
  transport_.EnqueueJson(200, "{\"result\":{\"ID\":\"77\",\"TTL\":\"2\"}}\n");
  absl::StatusOr<absl::Duration> ttl = client.LeaseKeepAlive(77);
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_EQ(*ttl, absl::Seconds(2));
}

TEST_F(EtcdClientTest, MemberStatusAsksThatMemberOnlyAndReadsItsLeader) {
  EtcdClient client(Options(), &transport_);
  transport_.EnqueueJson(200, R"({"header":{"member_id":"13668033151171901709","raft_term":"2"},)"
                              R"("version":"3.4.23","dbSize":"20480","leader":"13668033151171901709",)"
                              R"("raftIndex":"4","raftTerm":"2"})");
  absl::StatusOr<gw::StatusResponse> status =
      client.MemberStatus("http://127.0.0.1:2", absl::Seconds(1));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->header().member_id(), 13668033151171901709u);
  EXPECT_EQ(status->leader(), 13668033151171901709u);
  EXPECT_EQ(status->raft_term(), 2u);
  EXPECT_EQ(status->version(), "3.4.23");
  ASSERT_EQ(transport_.request_count(), 1);
  EXPECT_EQ(transport_.requests()[0].url, "http://127.0.0.1:2/v3/maintenance/status");
  EXPECT_EQ(transport_.requests()[0].timeout, absl::Seconds(1));
  // A member that cannot be reached is reported as such, not passed over for another.
  transport_.Enqueue(absl::UnavailableError("refused"));
  EXPECT_EQ(client.MemberStatus("http://127.0.0.1:3", absl::Seconds(1)).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(transport_.request_count(), 2);
  EXPECT_EQ(client.current_endpoint(), "http://127.0.0.1:1");
}

TEST_F(EtcdClientTest, RevokingALeaseAlreadyGoneIsFine) {
  EtcdClient client(Options(), &transport_);
  transport_.EnqueueJson(404, R"({"error":"etcdserver: requested lease not found","code":5,"message":"etcdserver: requested lease not found"})");
  EXPECT_TRUE(client.LeaseRevoke(77).ok());
}

}  // namespace
}  // namespace mailroom::etcd
