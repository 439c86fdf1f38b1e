#include "pan/broker/quota_ledger.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/rpc/status_grpc.h"
#include "gtest/gtest.h"
#include "pan/broker/leader_fence.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_http_transport.h"

namespace mailroom::broker {
namespace {

using ::mailroom::testing::FakeHttpTransport;

constexpr char kMailbox[] = "noreply@example.test";

class QuotaLedgerTest : public ::testing::Test {
 protected:
  QuotaLedgerTest() {
    etcd::EtcdClientOptions options;
    options.endpoints = {"http://127.0.0.1:2379"};
    etcd_ = std::make_unique<etcd::EtcdClient>(options, &transport_);
    fence_ = std::make_unique<LeaderFence>(LeaderFenceOptions{}, etcd_.get());
    ledger_ = std::make_unique<QuotaLedger>(QuotaLedgerOptions{}, fence_.get(), &quota_);
  }

  FakeClock clock_;
  SendQuota quota_{&clock_, SendLimitValues{}};
  FakeHttpTransport transport_;
  std::unique_ptr<etcd::EtcdClient> etcd_;
  std::unique_ptr<LeaderFence> fence_;
  std::unique_ptr<QuotaLedger> ledger_;
};

TEST_F(QuotaLedgerTest, NothingIsWrittenBeforeTheLedgerIsLoadedAsLeader) {
  const absl::Status status = ledger_->Persist(kMailbox);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReasonOf(status), "NOT_LEADER");
  EXPECT_EQ(transport_.request_count(), 0);
}

TEST_F(QuotaLedgerTest, LoadCountsThePreviousLeadersRecords) {
  ledger::LedgerRecord record;
  for (int i = 0; i < 25; ++i) {
    ledger::LedgerEntry* entry = record.add_entries();
    entry->set_messages(1);
    entry->set_recipients(1);
  }
  transport_.EnqueueJson(
      200, absl::StrCat(R"({"kvs":[{"key":")",
                        absl::Base64Escape(absl::StrCat("/mailroom/broker/ledger/", kMailbox)),
                        R"(","value":")", absl::Base64Escape(record.SerializeAsString()),
                        R"("}]})"));
  ASSERT_TRUE(ledger_->Load(etcd::KeyHold{5, 10}).ok());
  const HttpRequest range = transport_.requests()[0];
  EXPECT_EQ(range.url, "http://127.0.0.1:2379/v3/kv/range");
  EXPECT_NE(range.form_body.find(absl::Base64Escape("/mailroom/broker/ledger0")),
            std::string::npos);  // the prefix's range end
  absl::StatusOr<v1::AcquireSendPermitResponse> permit =
      quota_.Acquire(kMailbox, "psn1", "c1", std::vector<int>(30, 1));
  ASSERT_TRUE(permit.ok());
  EXPECT_EQ(permit->granted_messages(), 5);
}

TEST_F(QuotaLedgerTest, PersistWritesTheRecordOnlyWhileTheElectionKeyIsHeld) {
  transport_.EnqueueJson(200, R"({"kvs":[]})");
  ASSERT_TRUE(ledger_->Load(etcd::KeyHold{5, 10}).ok());
  ASSERT_TRUE(quota_.Acquire(kMailbox, "psn1", "c1", {1, 1}).ok());
  transport_.EnqueueJson(200, R"({"header":{"revision":"12"},"succeeded":true})");
  ASSERT_TRUE(ledger_->Persist(kMailbox).ok());
  const HttpRequest txn = transport_.requests()[1];
  EXPECT_EQ(txn.url, "http://127.0.0.1:2379/v3/kv/txn");
  EXPECT_NE(txn.form_body.find(absl::Base64Escape("/mailroom/broker/leader")), std::string::npos);
  EXPECT_NE(txn.form_body.find(R"("target":"LEASE")"), std::string::npos);
  EXPECT_NE(txn.form_body.find(R"("create_revision":"10")"), std::string::npos);
  EXPECT_NE(txn.form_body.find(absl::Base64Escape(absl::StrCat("/mailroom/broker/ledger/", kMailbox))),
            std::string::npos);
  // The key is someone else's now: NOT_LEADER, and no more writes.
  transport_.EnqueueJson(200, R"({"header":{"revision":"13"},"succeeded":false})");
  const absl::Status lost = ledger_->Persist(kMailbox);
  EXPECT_EQ(ReasonOf(lost), "NOT_LEADER");
  EXPECT_EQ(ReasonOf(ledger_->Persist(kMailbox)), "NOT_LEADER");
  EXPECT_EQ(transport_.request_count(), 3);
}

TEST_F(QuotaLedgerTest, GrantsPersistedWhileAWriteIsInFlightShareTheNextWrite) {
  transport_.EnqueueJson(200, R"({"kvs":[]})");
  ASSERT_TRUE(ledger_->Load(etcd::KeyHold{5, 10}).ok());
  transport_.EnqueueJson(200, R"({"header":{"revision":"12"},"succeeded":true})");
  ASSERT_TRUE(quota_.Acquire(kMailbox, "psn1", "c1", {1}).ok());
  transport_.Hold();
  std::thread first([&] { EXPECT_TRUE(ledger_->Persist(kMailbox).ok()); });
  while (transport_.request_count() < 2) absl::SleepFor(absl::Milliseconds(1));
  // Five more grants while the first write is held in flight.
  std::vector<std::thread> more;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(quota_.Acquire(kMailbox, "psn1", "c1", {1}).ok());
    more.emplace_back([&] { EXPECT_TRUE(ledger_->Persist(kMailbox).ok()); });
  }
  absl::SleepFor(absl::Milliseconds(100));  // let them all reach the wait
  EXPECT_EQ(transport_.request_count(), 2);
  transport_.Release();
  first.join();
  for (std::thread& t : more) t.join();
  // One write for the first grant, one for the five that waited; the last holds all six.
  ASSERT_EQ(transport_.request_count(), 3);
  // The clock has not moved: the record as of now is the record that write took.
  EXPECT_NE(transport_.requests()[2].form_body.find(
                absl::Base64Escape(quota_.Snapshot(kMailbox).SerializeAsString())),
            std::string::npos);
  EXPECT_EQ(transport_.requests()[1].form_body.find(
                absl::Base64Escape(quota_.Snapshot(kMailbox).SerializeAsString())),
            std::string::npos);
}

// A leader cut off from etcd (a partition, etcd without quorum) cannot write the record: to the
// role nodes that is an election (NOT_LEADER: they wait for the next leader), not a broker that
// is down, whose offline allowance would send at once outside the ledger. The hold is kept: a
// write that gets through again (etcd back within the term) is still guarded by it.
TEST_F(QuotaLedgerTest, AWriteEtcdDoesNotAnswerIsNotLeaderAndKeepsTheHold) {
  transport_.EnqueueJson(200, R"({"kvs":[]})");
  ASSERT_TRUE(ledger_->Load(etcd::KeyHold{5, 10}).ok());
  ASSERT_TRUE(quota_.Acquire(kMailbox, "psn1", "c1", {1}).ok());
  transport_.Enqueue(absl::DeadlineExceededError("POST http://127.0.0.1:2379/v3/kv/txn: timeout"));
  const absl::Status cut_off = ledger_->Persist(kMailbox);
  EXPECT_EQ(cut_off.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReasonOf(cut_off), "NOT_LEADER");
  EXPECT_NE(cut_off.message().find("timeout"), absl::string_view::npos) << cut_off;
  transport_.EnqueueJson(200, R"({"header":{"revision":"12"},"succeeded":true})");
  EXPECT_TRUE(ledger_->Persist(kMailbox).ok());
  EXPECT_EQ(transport_.request_count(), 3);
}

}  // namespace
}  // namespace mailroom::broker
