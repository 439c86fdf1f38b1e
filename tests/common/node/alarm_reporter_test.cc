// MntAlarmReporter against a real gRPC Alarms service in this process (a fake MnT that can
// hold a call open): alarms arrive in order, a refused one is not retried, and a full queue
// drops the oldest alarm that is not being sent, never one that was not (L10).
#include "common/node/alarm_reporter.h"

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/base/clock.h"
#include "common/base/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/capturing_log_sink.h"

namespace mailroom {
namespace {

namespace mv1 = ::mailroom::mnt::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Records each alarm's text; while `hold_` is set, the call for an alarm whose text starts
// with "hold" waits until released.
class FakeMnt final : public mv1::Alarms::Service {
 public:
  grpc::Status RaiseAlarm(grpc::ServerContext*, const mv1::RaiseAlarmRequest* request,
                          mv1::RaiseAlarmResponse*) override {
    absl::MutexLock lock(&mu_);
    if (request->text().rfind("hold", 0) == 0) {
      holding_ = true;
      mu_.Await(absl::Condition(+[](bool* released) { return *released; }, &released_));
      holding_ = false;
    }
    received_.push_back(request->text());
    return grpc::Status::OK;
  }
  grpc::Status ClearAlarm(grpc::ServerContext*, const mv1::ClearAlarmRequest* request,
                          mv1::ClearAlarmResponse*) override {
    absl::MutexLock lock(&mu_);
    received_.push_back(absl::StrCat("clear ", request->dedup_key()));
    return grpc::Status::OK;
  }
  void AwaitHolding() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&holding_));
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }
  std::vector<std::string> received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }

 private:
  absl::Mutex mu_;
  bool holding_ = false;
  bool released_ = false;
  std::vector<std::string> received_;
};

mv1::RaiseAlarmRequest Alarm(const std::string& text) {
  mv1::RaiseAlarmRequest request;
  request.set_type(mv1::ALARM_TYPE_GENERIC);
  request.set_text(text);
  request.set_idempotency_key(text);
  return request;
}

class AlarmReporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&mnt_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    sink_ = std::make_shared<::mailroom::testing::CapturingLogSink>();
    Logging::SetSink(sink_);
  }
  void TearDown() override {
    mnt_.Release();
    Logging::SetSink(std::make_shared<StderrLogSink>());
    server_->Shutdown(absl::ToChronoTime(absl::Now()));
  }

  FakeMnt mnt_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<::mailroom::testing::CapturingLogSink> sink_;
};

TEST_F(AlarmReporterTest, AlarmsArriveInOrder) {
  MntAlarmReporter reporter(server_->InProcessChannel(grpc::ChannelArguments()),
                            &RealClock::Get());
  for (const char* text : {"one", "two", "three"}) reporter.Raise(Alarm(text));
  ASSERT_TRUE(reporter.Flush(absl::Seconds(10)));
  EXPECT_THAT(mnt_.received(), ElementsAre("one", "two", "three"));
}

// A condition that comes and goes: the raise and the clear reach the MnT in the order given.
TEST_F(AlarmReporterTest, ClearsTravelInOrderWithTheAlarms) {
  MntAlarmReporter reporter(server_->InProcessChannel(grpc::ChannelArguments()),
                            &RealClock::Get());
  reporter.Raise(Alarm("token refresh failing"));
  mv1::ClearAlarmRequest clear;
  clear.set_dedup_key("token-acquisition");
  clear.set_reason("a token was fetched again");
  reporter.Clear(clear);
  reporter.Raise(Alarm("again"));
  ASSERT_TRUE(reporter.Flush(absl::Seconds(10)));
  EXPECT_THAT(mnt_.received(),
              ElementsAre("token refresh failing", "clear token-acquisition", "again"));
}

TEST_F(AlarmReporterTest, AFullQueueDropsTheOldestWaitingAlarmNotTheOneBeingSent) {
  MntAlarmReporter reporter(server_->InProcessChannel(grpc::ChannelArguments()),
                            &RealClock::Get(), /*max_queued=*/3);
  reporter.Raise(Alarm("hold: A"));
  mnt_.AwaitHolding();  // A is being sent
  reporter.Raise(Alarm("B"));
  reporter.Raise(Alarm("C"));
  reporter.Raise(Alarm("D"));  // full: B, the oldest waiting, goes
  mnt_.Release();
  ASSERT_TRUE(reporter.Flush(absl::Seconds(10)));
  EXPECT_THAT(mnt_.received(), ElementsAre("hold: A", "C", "D"));
  EXPECT_THAT(sink_->Text(), HasSubstr("dropping the oldest alarm: B"));
}

}  // namespace
}  // namespace mailroom
