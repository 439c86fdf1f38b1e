#include "pan/broker/leader_election.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/rpc/status_grpc.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_http_transport.h"

namespace mailroom::broker {
namespace {

using ::mailroom::testing::FakeHttpTransport;

// etcd's gateway, scripted, where each request takes `latency` of the fake clock's time.
class SlowTransport final : public HttpTransport {
 public:
  SlowTransport(FakeClock* clock, FakeHttpTransport* script) : clock_(clock), script_(script) {}
  absl::StatusOr<HttpResponse> PostForm(const HttpRequest& request) override {
    clock_->Advance(latency);
    return script_->PostForm(request);
  }
  absl::Duration latency = absl::ZeroDuration();

 private:
  FakeClock* clock_;
  FakeHttpTransport* script_;
};

constexpr char kSelf[] = "broker-b:7100";
constexpr char kOther[] = "broker-a:7100";

std::string KeyJson(const std::string& value, int64_t lease, int64_t create_revision) {
  return absl::StrCat(R"({"key":")", absl::Base64Escape("/mailroom/broker/leader"),
                      R"(","value":")", absl::Base64Escape(value), R"(","lease":")", lease,
                      R"(","create_revision":")", create_revision, R"("})");
}

class LeaderElectionTest : public ::testing::Test {
 protected:
  LeaderElectionTest() : transport_(&clock_, &script_) {
    etcd::EtcdClientOptions etcd_options;
    etcd_options.endpoints = {"http://127.0.0.1:2379"};
    etcd_ = std::make_unique<etcd::EtcdClient>(etcd_options, &transport_);
    LeaderElectionOptions options;
    options.advertised_address = kSelf;
    options.ttl = absl::Seconds(3);
    options.on_change = [this](bool leading) { changes_.push_back(leading); };
    election_ = std::make_unique<LeaderElection>(options, etcd_.get(), &clock_);
  }

  // A round in which this broker gets lease 5 and creates the key at revision 10.
  void Win() {
    script_.EnqueueJson(200, R"({"ID":"5","TTL":"3"})");
    script_.EnqueueJson(200, R"({"header":{"revision":"10"},"succeeded":true})");
    election_->Step();
    ASSERT_TRUE(election_->leading());
  }
  void RenewAndKeepKey() {
    script_.EnqueueJson(200, R"({"result":{"ID":"5","TTL":"3"}})");
    script_.EnqueueJson(200, absl::StrCat(R"({"kvs":[)", KeyJson(kSelf, 5, 10), "]}"));
  }

  FakeClock clock_;
  FakeHttpTransport script_;
  SlowTransport transport_;
  std::unique_ptr<etcd::EtcdClient> etcd_;
  std::unique_ptr<LeaderElection> election_;
  std::vector<bool> changes_;
};

TEST_F(LeaderElectionTest, FencingMarginIsATenthOfTheTtlAndAtLeastHalfASecond) {
  EXPECT_EQ(FencingMargin(absl::Seconds(3)), absl::Milliseconds(500));
  EXPECT_EQ(FencingMargin(absl::Seconds(10)), absl::Seconds(1));
}

TEST_F(LeaderElectionTest, LeadsWhenTheKeyIsFreeForTtlMinusMargin) {
  Win();
  EXPECT_TRUE(election_->CheckLeader().ok());
  EXPECT_EQ(election_->RemainingTerm(), absl::Milliseconds(2500));
  EXPECT_EQ(election_->leader_address(), kSelf);
  EXPECT_EQ(changes_, std::vector<bool>{true});
  // The key was created with the lease, only if absent.
  const std::vector<HttpRequest> requests = script_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].url, "http://127.0.0.1:2379/v3/lease/grant");
  EXPECT_EQ(requests[1].url, "http://127.0.0.1:2379/v3/kv/txn");
  EXPECT_NE(requests[1].form_body.find(R"("create_revision":"0")"), std::string::npos);
  EXPECT_NE(requests[1].form_body.find(R"("lease":"5")"), std::string::npos);
}

TEST_F(LeaderElectionTest, StandbyAnswersNotLeaderWithTheLeadersAddress) {
  script_.EnqueueJson(200, R"({"ID":"6","TTL":"3"})");
  script_.EnqueueJson(200, absl::StrCat(R"({"header":{"revision":"11"},"responses":[{"response_range":{"kvs":[)",
                                        KeyJson(kOther, 5, 10), "]}}]}"));
  const absl::Time start = clock_.Now();
  // A standby tries again every ttl/6, to take over soon after the leader goes.
  EXPECT_EQ(election_->Step(), start + absl::Milliseconds(500));
  EXPECT_FALSE(election_->leading());
  const absl::Status status = election_->CheckLeader();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReasonOf(status), "NOT_LEADER");
  EXPECT_EQ(LeaderAddressOf(status), kOther);
  EXPECT_EQ(ErrorDetailsOf(status).leader_address(), kOther);
  EXPECT_TRUE(changes_.empty());
}

TEST_F(LeaderElectionTest, StateShowsTheLeadersTermAndHowLongItLed) {
  Win();
  clock_.Advance(absl::Seconds(2));
  ElectionState state = election_->State();
  EXPECT_TRUE(state.leading);
  EXPECT_EQ(state.leader_address, kSelf);
  EXPECT_EQ(state.term, 10);  // the key's create_revision
  EXPECT_EQ(state.leading_for, absl::Seconds(2));
  EXPECT_EQ(state.remaining_term, absl::Milliseconds(500));
  // The term ran out without a renewal: no longer leading, and no leader known (not itself).
  clock_.Advance(absl::Seconds(1));
  state = election_->State();
  EXPECT_FALSE(state.leading);
  EXPECT_EQ(state.leader_address, "");
  EXPECT_EQ(state.term, 0);
  EXPECT_EQ(state.leading_for, absl::ZeroDuration());
}

TEST_F(LeaderElectionTest, AStandbysStateNamesTheLeaderAndItsTerm) {
  script_.EnqueueJson(200, R"({"ID":"6","TTL":"3"})");
  script_.EnqueueJson(200, absl::StrCat(R"({"header":{"revision":"11"},"responses":[{"response_range":{"kvs":[)",
                                        KeyJson(kOther, 5, 7), "]}}]}"));
  election_->Step();
  const ElectionState state = election_->State();
  EXPECT_FALSE(state.leading);
  EXPECT_EQ(state.leader_address, kOther);
  EXPECT_EQ(state.term, 7);
  EXPECT_EQ(state.remaining_term, absl::ZeroDuration());
}

TEST_F(LeaderElectionTest, ALeaderThatCannotRenewStopsGrantingBeforeTheTtlRunsOut) {
  const absl::Time start = clock_.Now();
  Win();  // the lease was granted at `start`: etcd keeps it until start + 3 s at the earliest
  clock_.Advance(absl::Seconds(1));
  script_.Enqueue(absl::UnavailableError("etcd unreachable"));
  const absl::Time next = election_->Step();
  EXPECT_TRUE(election_->leading());  // the term from the grant still runs
  EXPECT_LE(next, start + absl::Milliseconds(2500));
  clock_.SetTime(start + absl::Milliseconds(2499));
  EXPECT_TRUE(election_->CheckLeader().ok());
  clock_.SetTime(start + absl::Milliseconds(2500));
  EXPECT_FALSE(election_->leading());
  EXPECT_EQ(ReasonOf(election_->CheckLeader()), "NOT_LEADER");
  EXPECT_EQ(election_->RemainingTerm(), absl::ZeroDuration());
  // The round at the term's end reports it (gRPC health goes NOT_SERVING).
  election_->Step();
  EXPECT_EQ(changes_, (std::vector<bool>{true, false}));
}

TEST_F(LeaderElectionTest, TheTermCountsFromWhenTheRenewalWasSent) {
  Win();
  clock_.Advance(absl::Seconds(1));
  transport_.latency = absl::Milliseconds(200);
  const absl::Time sent = clock_.Now();
  RenewAndKeepKey();
  election_->Step();
  // Sent at `sent`, answered 200 ms later, checked the key in another 200 ms.
  EXPECT_EQ(clock_.Now(), sent + absl::Milliseconds(400));
  EXPECT_EQ(election_->RemainingTerm(), absl::Milliseconds(2500 - 400));
}

TEST_F(LeaderElectionTest, AnExpiredLeaseEndsTheTermAtOnce) {
  Win();
  clock_.Advance(absl::Seconds(1));
  script_.EnqueueJson(200, R"({"result":{"ID":"5"}})");  // TTL 0: gone
  election_->Step();
  EXPECT_FALSE(election_->leading());
  EXPECT_EQ(changes_, (std::vector<bool>{true, false}));
  // The next round starts over with a new lease.
  script_.EnqueueJson(200, R"({"ID":"7","TTL":"3"})");
  script_.EnqueueJson(200, R"({"header":{"revision":"20"},"succeeded":true})");
  election_->Step();
  EXPECT_TRUE(election_->leading());
}

TEST_F(LeaderElectionTest, AKeyThatIsNoLongerOursEndsTheTerm) {
  Win();
  clock_.Advance(absl::Seconds(1));
  script_.EnqueueJson(200, R"({"result":{"ID":"5","TTL":"3"}})");
  script_.EnqueueJson(200, absl::StrCat(R"({"kvs":[)", KeyJson(kOther, 9, 30), "]}"));
  election_->Step();
  EXPECT_FALSE(election_->leading());
  EXPECT_EQ(LeaderAddressOf(election_->CheckLeader()), kOther);
}

TEST_F(LeaderElectionTest, ResignEndsTheTermThenReleasesKeyAndLease) {
  Win();
  script_.EnqueueJson(200, R"({"header":{"revision":"12"},"succeeded":true})");
  script_.EnqueueJson(200, R"({"header":{"revision":"12"}})");
  election_->Resign();
  EXPECT_FALSE(election_->leading());
  EXPECT_EQ(changes_, (std::vector<bool>{true, false}));
  const std::vector<HttpRequest> requests = script_.requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[2].url, "http://127.0.0.1:2379/v3/kv/txn");
  EXPECT_NE(requests[2].form_body.find("request_delete_range"), std::string::npos);
  EXPECT_EQ(requests[3].url, "http://127.0.0.1:2379/v3/lease/revoke");
}

TEST_F(LeaderElectionTest, RunsInTheBackgroundEveryThirdOfTheTtl) {
  script_.EnqueueJson(200, R"({"ID":"5","TTL":"3"})");
  script_.EnqueueJson(200, R"({"header":{"revision":"10"},"succeeded":true})");
  RenewAndKeepKey();
  election_->Start();
  ASSERT_TRUE(clock_.AwaitWaiters(1, absl::Seconds(10)));
  EXPECT_EQ(script_.request_count(), 2);
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(clock_.AwaitWaiters(1, absl::Seconds(10)));
  EXPECT_EQ(script_.request_count(), 4);
  EXPECT_EQ(election_->RemainingTerm(), absl::Milliseconds(2500));
  election_->Stop();
}

TEST_F(LeaderElectionTest, TheLedgerLoadsBeforeTheTermAndAFailedLoadGivesTheKeyUp) {
  std::vector<int64_t> loaded;
  LeaderElectionOptions options;
  options.advertised_address = kSelf;
  options.ttl = absl::Seconds(3);
  bool fail = true;
  LeaderElection* self = nullptr;
  options.on_elected = [&](const etcd::KeyHold& hold) {
    EXPECT_FALSE(self->leading());  // not granting before the ledger is in
    loaded.push_back(hold.create_revision);
    return fail ? absl::UnavailableError("etcd went away") : absl::OkStatus();
  };
  LeaderElection election(options, etcd_.get(), &clock_);
  self = &election;
  script_.EnqueueJson(200, R"({"ID":"5","TTL":"3"})");
  script_.EnqueueJson(200, R"({"header":{"revision":"10"},"succeeded":true})");
  script_.EnqueueJson(200, R"({"header":{"revision":"11"},"succeeded":true})");  // key deleted
  election.Step();
  EXPECT_FALSE(election.leading());
  EXPECT_NE(script_.requests().back().form_body.find("request_delete_range"), std::string::npos);
  fail = false;
  script_.EnqueueJson(200, R"({"result":{"ID":"5","TTL":"3"}})");
  script_.EnqueueJson(200, R"({"header":{"revision":"12"},"succeeded":true})");
  election.Step();
  EXPECT_TRUE(election.leading());
  EXPECT_EQ(loaded, (std::vector<int64_t>{10, 12}));
}

// Each term start says how long this broker saw no broker lead before it: infinite for the
// first ever, about the wait for the lapsed leader's key on a takeover, and the whole outage
// when a leader's renewals failed for a while and then succeeded with the key still its own
// (role nodes may have sent offline meanwhile: the broker then holds grants for their reports).
TEST_F(LeaderElectionTest, EachTermStartSaysHowLongNoBrokerWasSeenLeading) {
  std::vector<absl::Duration> starts;
  LeaderElectionOptions options;
  options.advertised_address = kSelf;
  options.ttl = absl::Seconds(3);
  LeaderElection* self = nullptr;
  options.on_term_start = [&](absl::Duration leaderless_for) {
    EXPECT_FALSE(self->leading());  // before the term, so a hold is in place for its grants
    starts.push_back(leaderless_for);
  };
  {
    LeaderElection fresh(options, etcd_.get(), &clock_);
    self = &fresh;
    script_.EnqueueJson(200, R"({"ID":"5","TTL":"3"})");
    script_.EnqueueJson(200, R"({"header":{"revision":"10"},"succeeded":true})");
    fresh.Step();
    ASSERT_TRUE(fresh.leading());
  }
  ASSERT_EQ(starts, (std::vector<absl::Duration>{absl::InfiniteDuration()}));

  LeaderElection election(options, etcd_.get(), &clock_);
  self = &election;
  // A standby sees broker-a lead, then takes over 4 s later.
  script_.EnqueueJson(200, R"({"ID":"6","TTL":"3"})");
  script_.EnqueueJson(200, absl::StrCat(R"({"header":{"revision":"11"},"responses":[{"response_range":{"kvs":[)",
                                        KeyJson(kOther, 5, 10), "]}}]}"));
  election.Step();
  clock_.Advance(absl::Seconds(4));
  script_.EnqueueJson(200, R"({"result":{"ID":"6","TTL":"3"}})");
  script_.EnqueueJson(200, R"({"header":{"revision":"12"},"succeeded":true})");
  election.Step();
  ASSERT_TRUE(election.leading());
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_EQ(starts[1], absl::Seconds(4));
  // etcd loses quorum for 40 s: renewals fail, the term lapses; then a renewal gets through
  // and the key is still ours.
  for (int i = 0; i < 40; ++i) {
    clock_.Advance(absl::Seconds(1));
    script_.Enqueue(absl::UnavailableError("etcd has no quorum"));
    election.Step();
  }
  ASSERT_FALSE(election.leading());
  ASSERT_EQ(starts.size(), 2u);
  clock_.Advance(absl::Seconds(1));
  script_.EnqueueJson(200, R"({"result":{"ID":"6","TTL":"3"}})");
  script_.EnqueueJson(200, absl::StrCat(R"({"kvs":[)", KeyJson(kSelf, 6, 12), "]}"));
  election.Step();
  EXPECT_TRUE(election.leading());
  ASSERT_EQ(starts.size(), 3u);
  EXPECT_EQ(starts[2], absl::Seconds(41));
  // An ordinary renewal starts no term.
  clock_.Advance(absl::Seconds(1));
  script_.EnqueueJson(200, R"({"result":{"ID":"6","TTL":"3"}})");
  script_.EnqueueJson(200, absl::StrCat(R"({"kvs":[)", KeyJson(kSelf, 6, 12), "]}"));
  election.Step();
  EXPECT_EQ(starts.size(), 3u);
}

}  // namespace
}  // namespace mailroom::broker
