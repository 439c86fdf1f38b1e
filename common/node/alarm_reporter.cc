#include "common/node/alarm_reporter.h"

#include "common/base/logging.h"

namespace mailroom {

namespace mv1 = ::mailroom::mnt::v1;

void LoggingAlarmReporter::Raise(RaiseAlarmRequest request) {
  MR_LOG(kWarn, kLogMnt) << "alarm " << mv1::AlarmType_Name(request.type()) << " ["
                         << request.dedup_key() << "]: " << request.text()
                         << " (no MnT configured; logged only)";
}

MntAlarmReporter::MntAlarmReporter(std::shared_ptr<grpc::Channel> channel, const Clock* clock,
                                   size_t max_queued)
    : stub_(mv1::Alarms::NewStub(channel)), clock_(clock), max_queued_(max_queued) {
  worker_ = std::thread([this] { Run(); });
}

MntAlarmReporter::~MntAlarmReporter() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  worker_.join();
}

void MntAlarmReporter::Raise(RaiseAlarmRequest request) {
  MR_LOG(kInfo, kLogMnt) << "raising alarm " << mv1::AlarmType_Name(request.type()) << ": "
                         << request.text();
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= max_queued_) {
    MR_LOG(kError, kLogMnt) << "alarm queue full; dropping the oldest alarm: "
                            << queue_.front().text();
    queue_.pop_front();
  }
  queue_.push_back(std::move(request));
}

bool MntAlarmReporter::Flush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(+[](std::deque<RaiseAlarmRequest>* q) { return q->empty(); }, &queue_),
      timeout);
}

void MntAlarmReporter::Run() {
  absl::Duration backoff = absl::Seconds(1);
  mu_.Lock();
  while (true) {
    struct Wake {
      MntAlarmReporter* self;
    } wake{this};
    mu_.Await(absl::Condition(
        +[](Wake* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return w->self->stopping_ || !w->self->queue_.empty();
        },
        &wake));
    if (stopping_) break;
    RaiseAlarmRequest request = queue_.front();
    mu_.Unlock();
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    mv1::RaiseAlarmResponse response;
    const grpc::Status status = stub_->RaiseAlarm(&context, request, &response);
    mu_.Lock();
    // Only a failure to reach the MnT is worth retrying; any answer it gave is final (a retry
    // would block every alarm behind this one).
    const grpc::StatusCode code = status.error_code();
    const bool retry = code == grpc::StatusCode::UNAVAILABLE ||
                       code == grpc::StatusCode::DEADLINE_EXCEEDED ||
                       code == grpc::StatusCode::RESOURCE_EXHAUSTED ||
                       code == grpc::StatusCode::UNKNOWN;
    if (!retry) {
      if (!status.ok()) {
        MR_LOG(kError, kLogMnt) << "MnT refused alarm (" << status.error_message()
                                << "); dropping it: " << request.text();
      }
      if (!queue_.empty()) queue_.pop_front();
      backoff = absl::Seconds(1);
      continue;
    }
    MR_LOG(kWarn, kLogMnt) << "cannot reach MnT (" << status.error_message() << "); retrying in "
                           << backoff;
    clock_->AwaitWithDeadline(&mu_, absl::Condition(&stopping_), clock_->Now() + backoff);
    backoff = std::min(backoff * 2, absl::Minutes(1));
  }
  mu_.Unlock();
}

}  // namespace mailroom
