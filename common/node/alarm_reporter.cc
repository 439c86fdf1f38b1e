#include "common/node/alarm_reporter.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

#include "common/base/logging.h"
#include "common/base/metrics.h"

namespace mailroom {

namespace mv1 = ::mailroom::mnt::v1;

namespace {

// 1 s, doubling to a minute; no jitter (one reporter per node).
const BackoffPolicy kRetryPolicy{absl::Seconds(1), absl::Minutes(1), 0};

}  // namespace

void AlarmReporter::ClearOwn(std::string source_node, std::string dedup_key, std::string reason) {
  ClearAlarmRequest request;
  request.set_source_node(std::move(source_node));
  request.set_dedup_key(std::move(dedup_key));
  request.set_reason(std::move(reason));
  Clear(std::move(request));
}

void LoggingAlarmReporter::Raise(RaiseAlarmRequest request) {
  MR_LOG(kWarn, kLogMnt) << "alarm " << mv1::AlarmType_Name(request.type()) << " ["
                         << request.dedup_key() << "]: " << request.text()
                         << " (no MnT configured; logged only)";
}

MntAlarmReporter::MntAlarmReporter(std::shared_ptr<grpc::Channel> channel, const Clock* clock,
                                   size_t max_queued)
    : stub_(mv1::Alarms::NewStub(channel)),
      clock_(clock),
      max_queued_(max_queued),
      retry_(clock, kRetryPolicy),
      worker_(clock, [this] { return SendOne(); }) {
  worker_.Start();
}

MntAlarmReporter::~MntAlarmReporter() { worker_.Stop(); }

void LoggingAlarmReporter::Clear(ClearAlarmRequest request) {
  MR_LOG(kInfo, kLogMnt) << "alarm [" << request.dedup_key() << "] cleared: " << request.reason()
                         << " (no MnT configured; logged only)";
}

std::string MntAlarmReporter::Queued::Describe() const {
  return raise.has_value() ? raise->text()
                           : absl::StrCat("clearing [", clear->dedup_key(), "]");
}

void MntAlarmReporter::Raise(RaiseAlarmRequest request) {
  MR_LOG(kInfo, kLogMnt) << "raising alarm " << mv1::AlarmType_Name(request.type()) << ": "
                         << request.text();
  Queued queued;
  queued.raise = std::move(request);
  Enqueue(std::move(queued));
}

void MntAlarmReporter::Clear(ClearAlarmRequest request) {
  MR_LOG(kInfo, kLogMnt) << "clearing alarm [" << request.dedup_key() << "]: " << request.reason();
  Queued queued;
  queued.clear = std::move(request);
  Enqueue(std::move(queued));
}

void MntAlarmReporter::Enqueue(Queued queued) {
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= max_queued_) {
    auto oldest = queue_.begin();
    if (oldest != queue_.end() && oldest->sequence == in_flight_) ++oldest;
    if (oldest != queue_.end()) {
      MR_LOG(kError, kLogMnt) << "alarm queue full; dropping the oldest alarm: "
                              << oldest->Describe();
      Metrics::Global().Increment("mailroom_alarms_dropped_total",
                                  "Alarms dropped because the queue to the MnT was full.");
      queue_.erase(oldest);
    }
  }
  queued.sequence = next_sequence_++;
  queue_.push_back(std::move(queued));
  if (!retry_.Waiting()) worker_.Wake();
}

bool MntAlarmReporter::Flush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(+[](std::deque<Queued>* q) { return q->empty(); }, &queue_),
      timeout);
}

absl::Time MntAlarmReporter::SendOne() {
  Queued item;
  {
    absl::MutexLock lock(&mu_);
    if (queue_.empty()) return absl::InfiniteFuture();  // Raise() wakes the worker
    // Woken by a Raise() that raced a failed attempt: the backoff still stands.
    if (retry_.Waiting()) return retry_.next_attempt();
    item = queue_.front();
    in_flight_ = item.sequence;
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status status;
  if (item.raise.has_value()) {
    mv1::RaiseAlarmResponse response;
    status = stub_->RaiseAlarm(&context, *item.raise, &response);
  } else {
    mv1::ClearAlarmResponse response;
    status = stub_->ClearAlarm(&context, *item.clear, &response);
  }
  absl::MutexLock lock(&mu_);
  const uint64_t sent = in_flight_;
  in_flight_ = 0;
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
                              << "); dropping it: " << item.Describe();
    }
    auto done = std::find_if(queue_.begin(), queue_.end(),
                             [sent](const Queued& q) { return q.sequence == sent; });
    if (done != queue_.end()) queue_.erase(done);
    retry_.RecordSuccess();
    return absl::InfinitePast();  // the next one at once
  }
  const absl::Duration backoff = retry_.RecordFailure();
  MR_LOG(kWarn, kLogMnt) << "cannot reach MnT (" << status.error_message() << "); retrying in "
                         << backoff;
  return retry_.next_attempt();
}

}  // namespace mailroom
