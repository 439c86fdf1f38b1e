#include "common/node/backlog_monitor.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/proto_time.h"

namespace mailroom {
namespace {

namespace mv1 = ::mailroom::mnt::v1;

// The most of a cause the alarm text quotes (the MnT takes 4 KiB of text).
constexpr size_t kMaxCauseBytes = 600;

std::string Seconds(absl::Duration duration) {
  const absl::Duration whole = absl::Trunc(duration, absl::Seconds(1));
  return whole == absl::ZeroDuration() ? "0s" : absl::FormatDuration(whole);
}

std::string Shortened(absl::string_view text) {
  if (text.size() <= kMaxCauseBytes) return std::string(text);
  size_t cut = kMaxCauseBytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
  return absl::StrCat(text.substr(0, cut), "...");
}

}  // namespace

BacklogThresholds BacklogThresholds::FromConfig(
    const mailroom::config::v1::DeliveryConfig& delivery) {
  BacklogThresholds thresholds;
  if (delivery.backlog_alarm_queued() > 0) thresholds.queued = delivery.backlog_alarm_queued();
  thresholds.age = FromProtoOr(delivery.backlog_alarm_age(), thresholds.age);
  return thresholds;
}

std::string WhyUnsent(const OutboxEntry& oldest) {
  if (!oldest.wait_reason().empty()) return oldest.wait_reason();
  const mailroom::common::v1::Diagnosis& diagnosis = oldest.notification().diagnosis();
  if (diagnosis.title().empty()) return "";
  return absl::StrCat("its last attempt failed: ", diagnosis.title(),
                      diagnosis.raw_reply().empty() ? "" : " (", diagnosis.raw_reply(),
                      diagnosis.raw_reply().empty() ? "" : ")");
}

BacklogMonitor::BacklogMonitor(std::string node_name, BacklogThresholds thresholds,
                               const Clock* clock, AlarmReporter* alarms)
    : node_name_(std::move(node_name)),
      thresholds_(thresholds),
      clock_(clock),
      alarms_(alarms) {}

absl::Duration BacklogMonitor::CheckInterval() const {
  return std::clamp(thresholds_.age / 5, absl::Seconds(1), absl::Minutes(1));
}

bool BacklogMonitor::over() const {
  absl::MutexLock lock(&mu_);
  return reported_over_.value_or(false);
}

void BacklogMonitor::Check(const UnsentSummary& unsent, absl::string_view known_cause) {
  const absl::Time now = clock_->Now();
  const absl::Duration oldest_age =
      unsent.oldest.has_value()
          ? std::max(absl::ZeroDuration(),
                     now - FromProto(unsent.oldest->notification().create_time()))
          : absl::ZeroDuration();
  const bool over = unsent.count > thresholds_.queued || oldest_age > thresholds_.age;
  absl::MutexLock lock(&mu_);
  if (reported_over_.has_value() && *reported_over_ == over) return;  // once per episode
  reported_over_ = over;
  if (over) {
    RaiseLocked(unsent, oldest_age, known_cause, now);
    return;
  }
  // Also sent once at the first check: an alarm raised before a restart is cleared as soon as
  // the restarted node finds its outbox under the thresholds.
  alarms_->ClearOwn(node_name_, std::string(kDedupKey),
                    absl::StrCat("the outbox of ", node_name_,
                                 " is back under its thresholds (", unsent.count, " unsent)"));
}

void BacklogMonitor::RaiseLocked(const UnsentSummary& unsent, absl::Duration oldest_age,
                                 absl::string_view known_cause, absl::Time now) {
  std::string why = unsent.oldest.has_value() ? WhyUnsent(*unsent.oldest) : "";
  if (why.empty()) why = std::string(known_cause);
  RaiseAlarmRequest alarm;
  alarm.set_type(mv1::ALARM_TYPE_QUEUE_BACKLOG);
  alarm.set_severity(mv1::ALARM_SEVERITY_WARNING);
  alarm.set_source_node(node_name_);
  alarm.set_dedup_key(std::string(kDedupKey));
  alarm.set_text(absl::StrCat(
      "The outbox of ", node_name_, " holds ", unsent.count,
      " notification(s) not yet delivered (alarm above ", thresholds_.queued,
      "); the oldest was queued ", Seconds(oldest_age), " ago (alarm above ",
      Seconds(thresholds_.age), "). ",
      why.empty() ? "No delivery error is known yet. "
                  : absl::StrCat("The oldest waits: ", Shortened(why), ". "),
      "Nothing is lost: the mail is kept and retried. Check what stops delivery: the SMTP "
      "server and the way to it (mailroomctl settings test), the token broker and its alarms "
      "(mailroomctl status), and the node's entries (mailroomctl outbox list NODE)."));
  if (unsent.oldest.has_value() && unsent.oldest->notification().has_diagnosis()) {
    *alarm.mutable_diagnosis() = unsent.oldest->notification().diagnosis();
  }
  ToProto(now, alarm.mutable_occur_time());
  alarm.set_idempotency_key(absl::StrCat(kDedupKey, "/", absl::ToUnixMillis(now)));
  alarms_->Raise(std::move(alarm));
}

}  // namespace mailroom
