#include "mnt/alarm_manager.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/base/proto_hash.h"
#include "common/base/proto_time.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"
#include "common/rpc/status_grpc.h"
#include "mnt/alarm_mail.h"
#include "mnt/alarm_types.h"
#include "mnt/alarm_validation.h"

namespace mailroom::mnt {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;

// Alarm.notification_ids keeps the most recent ones only.
constexpr int kMaxNotificationIds = 20;

cv1::Role ProtoRole(Role role) {
  switch (role) {
    case Role::kBroker: return cv1::ROLE_BROKER;
    case Role::kPan: return cv1::ROLE_PAN;
    case Role::kPsn: return cv1::ROLE_PSN;
    case Role::kMnt: return cv1::ROLE_MNT;
    case Role::kAdmin: return cv1::ROLE_ADMIN;
    case Role::kPortal: return cv1::ROLE_PORTAL;
  }
  return cv1::ROLE_UNSPECIFIED;
}

void AddNotificationId(const std::string& id, mv1::Alarm* alarm) {
  alarm->add_notification_ids(id);
  auto* ids = alarm->mutable_notification_ids();
  if (ids->size() > kMaxNotificationIds) ids->erase(ids->begin(), ids->end() - kMaxNotificationIds);
}

std::string DispositionName(mv1::AlarmDisposition disposition) {
  std::string name = mv1::AlarmDisposition_Name(disposition);
  absl::string_view view = name;
  absl::ConsumePrefix(&view, "ALARM_DISPOSITION_");
  return std::string(view);
}

}  // namespace

std::string AlarmSettingsEtag(const mv1::AlarmSettings& settings) {
  mv1::AlarmSettings content = settings;
  content.clear_etag();
  content.clear_update_time();
  return ProtoSha256Hex(content).substr(0, 16);
}

AlarmManager::AlarmManager(AlarmStore* store, Outbox* outbox, const Clock* clock,
                           AlarmManagerOptions options)
    : store_(store), outbox_(outbox), clock_(clock), options_(std::move(options)) {}

absl::Status AlarmManager::Start(const mv1::AlarmSettings& initial) {
  absl::StatusOr<absl::optional<mv1::AlarmSettings>> saved = store_->LoadSettings();
  if (!saved.ok()) return saved.status();
  absl::MutexLock lock(&mu_);
  if (saved->has_value()) {
    settings_ = **saved;
    MR_LOG(kInfo, kLogMnt) << "alarm settings loaded (etag " << settings_.etag() << ")";
  } else {
    if (absl::Status s = ValidateAlarmSettings(initial, "mnt.alarm_settings."); !s.ok()) return s;
    if (absl::Status s = SaveSettingsLocked(initial); !s.ok()) return s;
    MR_LOG(kInfo, kLogMnt) << "alarm settings initialized from the node configuration";
  }
  MR_LOG(kInfo, kLogMnt) << "include system alarms in emails: "
                         << (settings_.include_system_alarms_in_emails() ? "on" : "off")
                         << ", sender " << settings_.sender().address() << ", "
                         << settings_.admin_recipients_size() << " admin recipient(s), window "
                         << absl::FormatDuration(Window());
  return absl::OkStatus();
}

absl::Status AlarmManager::SaveSettingsLocked(mv1::AlarmSettings settings) {
  settings.clear_etag();
  ToProto(clock_->Now(), settings.mutable_update_time());
  settings.set_etag(AlarmSettingsEtag(settings));
  if (absl::Status s = store_->SaveSettings(settings); !s.ok()) return s;
  settings_ = std::move(settings);
  return absl::OkStatus();
}

absl::Duration AlarmManager::Window() const {
  if (!settings_.has_suppression_window()) return kDefaultSuppressionWindow;
  return absl::Seconds(settings_.suppression_window().seconds()) +
         absl::Nanoseconds(settings_.suppression_window().nanos());
}

std::string AlarmManager::WhyNotEmailed(mv1::AlarmType type, const std::string& source_node) const {
  if (!settings_.include_system_alarms_in_emails()) return "system alarms in emails are off";
  if (settings_.admin_recipients_size() == 0) return "there are no admin recipients";
  const auto& enabled = settings_.enabled_types();
  if (!enabled.empty() && std::find(enabled.begin(), enabled.end(), type) == enabled.end()) {
    return absl::StrCat(mv1::AlarmType_Name(type), " is not an enabled type");
  }
  if (source_node == options_.node_name && IsMailPathAlarm(type)) {
    return "it is about this MnT node's own mail delivery (emailing it could fail the same way)";
  }
  return "";
}

absl::StatusOr<std::string> AlarmManager::Queue(const MailContent& content,
                                                cv1::NotificationKind kind,
                                                const std::string& idempotency_key,
                                                const std::string& fingerprint) {
  MimeOptions mime;
  mime.max_bytes = options_.max_message_bytes;
  absl::StatusOr<std::string> message = BuildMimeMessage(content, mime);
  if (!message.ok()) {
    // Input and settings were validated, so this is not the caller's fault.
    return absl::InternalError(
        absl::StrCat("cannot render the alarm email: ", message.status().message()));
  }
  NewNotification notification;
  notification.idempotency_key = idempotency_key;
  notification.request_fingerprint = fingerprint;
  notification.kind = kind;
  *notification.from.mutable_address() = content.from.address;
  *notification.from.mutable_display_name() = content.from.display_name;
  for (const MailAddress& to : content.to) {
    cv1::Recipient recipient;
    recipient.mutable_address()->set_address(to.address);
    recipient.mutable_address()->set_display_name(to.display_name);
    recipient.set_type(cv1::RECIPIENT_TYPE_TO);
    notification.recipients.push_back(std::move(recipient));
  }
  notification.subject = content.subject;
  notification.message_id = content.message_id;
  notification.message = *std::move(message);
  absl::StatusOr<EnqueueResult> queued = outbox_->Enqueue(notification);
  if (!queued.ok()) return queued.status();
  return queued->notification_id;
}

absl::StatusOr<mv1::RaiseAlarmResponse> AlarmManager::RaiseAlarm(
    const mv1::RaiseAlarmRequest& request, const Caller& caller) {
  if (absl::Status s = ValidateRaiseAlarmRequest(request); !s.ok()) return s;
  if (request.source_node().empty() && caller.role != Role::kAdmin) {
    return absl::InvalidArgumentError(
        "source_node: required (the node name in the caller's certificate)");
  }
  if (!request.source_node().empty() && request.source_node() != caller.node_name) {
    return WithReason(absl::PermissionDeniedError(absl::StrCat(
                          "source_node: \"", request.source_node(),
                          "\" is not the caller's certificate name \"", caller.node_name, "\"")),
                      "ROLE_NOT_ALLOWED");
  }
  absl::StatusOr<Raised> raised;
  {
    absl::MutexLock lock(&mu_);
    raised = RaiseLocked(request, caller);
  }
  if (!raised.ok()) return raised.status();
  if (raised->summary_pending) wake_.Run();
  return std::move(raised->response);
}

absl::StatusOr<AlarmManager::Raised> AlarmManager::RaiseLocked(
    const mv1::RaiseAlarmRequest& request, const Caller& caller) {
  mv1::RaiseAlarmRequest without_key = request;
  without_key.clear_idempotency_key();
  const std::string fingerprint = DeterministicBytes(without_key);
  const std::string fingerprint_hash = Sha256(fingerprint);

  absl::StatusOr<absl::optional<RaiseRecord>> earlier =
      store_->FindRaise(request.idempotency_key());
  if (!earlier.ok()) return earlier.status();
  if (earlier->has_value()) {
    if ((*earlier)->fingerprint != fingerprint_hash) {
      return WithReason(
          absl::AlreadyExistsError(absl::StrCat("idempotency_key: \"", request.idempotency_key(),
                                                "\" was already used for a different alarm")),
          "IDEMPOTENCY_KEY_REUSED");
    }
    Raised again;
    again.response = (*earlier)->response;
    again.response.set_duplicate(true);
    MR_LOG(kDebug, kLogMnt) << "RaiseAlarm " << request.idempotency_key()
                            << " repeated; counted once";
    return again;
  }

  const absl::Time now = clock_->Now();
  const std::string source_node =
      request.source_node().empty() ? caller.node_name : request.source_node();
  const std::string dedup_key = request.dedup_key().empty()
                                    ? DefaultDedupKey(request.type(), source_node)
                                    : request.dedup_key();
  // A raising node's clock may run ahead; an occurrence is never recorded in the future.
  const absl::Time occur =
      request.has_occur_time() ? std::min(FromProto(request.occur_time()), now) : now;

  absl::StatusOr<absl::optional<AlarmRecord>> active = store_->FindActive(source_node, dedup_key);
  if (!active.ok()) return active.status();
  AlarmRecord record;
  mv1::Alarm& alarm = record.alarm;
  if (active->has_value()) {
    record = **active;
    if (occur < FromProto(alarm.first_occur_time())) ToProto(occur, alarm.mutable_first_occur_time());
    if (occur > FromProto(alarm.last_occur_time())) ToProto(occur, alarm.mutable_last_occur_time());
  } else {
    absl::StatusOr<std::string> id = store_->NextAlarmId();
    if (!id.ok()) return id.status();
    alarm.set_id(*id);
    alarm.set_state(mv1::ALARM_STATE_ACTIVE);
    alarm.set_dedup_key(dedup_key);
    ToProto(occur, alarm.mutable_first_occur_time());
    ToProto(occur, alarm.mutable_last_occur_time());
  }
  alarm.set_type(request.type());
  alarm.set_severity(request.severity() != mv1::ALARM_SEVERITY_UNSPECIFIED
                         ? request.severity()
                         : DefaultSeverity(request.type(), request.diagnosis()));
  alarm.set_source_node(source_node);
  alarm.set_source_role(ProtoRole(caller.role));
  alarm.set_text(request.text());
  if (request.has_diagnosis()) {
    *alarm.mutable_diagnosis() = request.diagnosis();
  } else {
    alarm.clear_diagnosis();
  }
  alarm.set_occurrence_count(alarm.occurrence_count() + 1);

  Raised raised;
  mv1::RaiseAlarmResponse& response = raised.response;
  const std::string not_emailed = WhyNotEmailed(request.type(), source_node);
  if (!not_emailed.empty()) {
    response.set_disposition(mv1::ALARM_DISPOSITION_NOT_EMAILED);
  } else if (now < record.window_end) {
    response.set_disposition(mv1::ALARM_DISPOSITION_SUPPRESSED);
    alarm.set_suppressed_count(alarm.suppressed_count() + 1);
    raised.summary_pending = alarm.suppressed_count() == 1;
  } else {
    const absl::Duration window = Window();
    AlarmMailEnvelope envelope{&settings_, options_.node_name, outbox_->NewMessageId(), now};
    absl::StatusOr<std::string> id =
        Queue(RenderAlarmMail(alarm, window, envelope), cv1::NOTIFICATION_KIND_ALARM,
              request.idempotency_key(), fingerprint);
    if (!id.ok()) return id.status();
    response.set_disposition(mv1::ALARM_DISPOSITION_EMAILED);
    response.set_notification_id(*id);
    ToProto(now, alarm.mutable_last_email_time());
    AddNotificationId(*id, &alarm);
    record.window_start = now;
    record.window_end = now + window;
  }
  *response.mutable_alarm() = alarm;

  RaiseRecord raise;
  raise.idempotency_key = request.idempotency_key();
  raise.fingerprint = fingerprint_hash;
  raise.alarm_id = alarm.id();
  raise.response = response;
  raise.create_time = now;
  if (absl::Status s = store_->CommitRaise(record, raise); !s.ok()) return s;

  MR_LOG(kInfo, kLogMnt) << "alarm " << alarm.id() << " " << mv1::AlarmType_Name(alarm.type())
                         << " [" << alarm.dedup_key() << "] from " << source_node << " (#"
                         << alarm.occurrence_count()
                         << "): " << DispositionName(response.disposition())
                         << (response.notification_id().empty()
                                 ? std::string()
                                 : absl::StrCat(" as ", response.notification_id()))
                         << (not_emailed.empty() ? std::string()
                                                 : absl::StrCat(" because ", not_emailed))
                         << ": " << alarm.text();
  return raised;
}

absl::StatusOr<mv1::ListAlarmsResponse> AlarmManager::ListAlarms(
    const mv1::ListAlarmsRequest& request) const {
  if (absl::Status s = ValidateListAlarmsRequest(request); !s.ok()) return s;
  return store_->List(request);
}

absl::StatusOr<absl::optional<AlarmRecord>> AlarmManager::FindAlarmToClear(
    const mv1::ClearAlarmRequest& request, const Caller& caller) const {
  if (!request.id().empty()) return store_->Get(request.id());
  if (caller.role != Role::kAdmin) {
    if (!request.source_node().empty() && request.source_node() != caller.node_name) {
      return WithReason(absl::PermissionDeniedError(
                            "source_node: a node may clear only its own alarms"),
                        "ROLE_NOT_ALLOWED");
    }
    MR_ASSIGN_OR_RETURN(absl::optional<AlarmRecord> own,
                        store_->FindActive(caller.node_name, request.dedup_key()));
    if (own.has_value()) return own;
    MR_ASSIGN_OR_RETURN(std::vector<AlarmRecord> others,
                        store_->FindActiveOfAnyNode(request.dedup_key()));
    if (!others.empty()) {
      return WithReason(absl::PermissionDeniedError(absl::StrCat(
                            "dedup_key: the active alarm under this key was raised by \"",
                            others.front().alarm.source_node(),
                            "\"; a node may clear only its own alarms")),
                        "ROLE_NOT_ALLOWED");
    }
    return own;
  }
  if (!request.source_node().empty()) {
    return store_->FindActive(request.source_node(), request.dedup_key());
  }
  MR_ASSIGN_OR_RETURN(std::vector<AlarmRecord> active,
                      store_->FindActiveOfAnyNode(request.dedup_key()));
  if (active.empty()) return absl::optional<AlarmRecord>();
  if (active.size() > 1) {
    std::vector<std::string> nodes;
    for (const AlarmRecord& record : active) nodes.push_back(record.alarm.source_node());
    return absl::FailedPreconditionError(absl::StrCat(
        "dedup_key: ", active.size(), " nodes have an active alarm under this key (",
        absl::StrJoin(nodes, ", "), "): name one with source_node, or clear by id"));
  }
  return absl::optional<AlarmRecord>(std::move(active.front()));
}

absl::StatusOr<mv1::ClearAlarmResponse> AlarmManager::ClearAlarm(
    const mv1::ClearAlarmRequest& request, const Caller& caller) {
  if (absl::Status s = ValidateClearAlarmRequest(request); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  MR_ASSIGN_OR_RETURN(absl::optional<AlarmRecord> found, FindAlarmToClear(request, caller));
  mv1::ClearAlarmResponse response;
  if (!found.has_value()) {
    if (request.id().empty()) return response;  // nothing active under that key: already clear
    return absl::NotFoundError(absl::StrCat("id: no alarm \"", request.id(), "\""));
  }
  AlarmRecord record = *std::move(found);
  mv1::Alarm& alarm = record.alarm;
  if (caller.role != Role::kAdmin && alarm.source_node() != caller.node_name) {
    return WithReason(absl::PermissionDeniedError(absl::StrCat(
                          "ClearAlarm: alarm ", alarm.id(), " was raised by \"",
                          alarm.source_node(), "\"; a node may clear only its own alarms")),
                      "ROLE_NOT_ALLOWED");
  }
  if (alarm.state() != mv1::ALARM_STATE_CLEARED) {
    alarm.set_state(mv1::ALARM_STATE_CLEARED);
    ToProto(clock_->Now(), alarm.mutable_clear_time());
    alarm.set_cleared_by(caller.node_name);
    alarm.set_clear_reason(request.reason());
    if (absl::Status s = store_->Save(record); !s.ok()) return s;
    MR_LOG(kInfo, kLogMnt) << "alarm " << alarm.id() << " [" << alarm.dedup_key() << "] cleared by "
                           << caller.node_name << (request.reason().empty() ? "" : ": ")
                           << request.reason();
  }
  *response.mutable_alarm() = alarm;
  return response;
}

mv1::AlarmSettings AlarmManager::GetSettings() const {
  absl::MutexLock lock(&mu_);
  return settings_;
}

absl::StatusOr<mv1::AlarmSettings> AlarmManager::SetSettings(
    const mv1::SetAlarmSettingsRequest& request, const Caller& caller) {
  if (absl::Status s = ValidateAlarmSettings(request.settings(), "settings."); !s.ok()) return s;
  // Outside the lock: it may wait for the broker. Alarm summaries are ALARMS mail too.
  MR_RETURN_IF_ERROR(FromAddressCheck(options_.mail_routes)
                         .Check("settings.sender", request.settings().sender().address(),
                                {::mailroom::common::v1::MAIL_PURPOSE_ALARMS}));
  absl::MutexLock lock(&mu_);
  if (!request.etag().empty() && request.etag() != settings_.etag()) {
    return WithReason(absl::AbortedError(absl::StrCat(
                          "etag: the Alarm Settings changed since they were read (now ",
                          settings_.etag(), "); read them again")),
                      "ETAG_MISMATCH");
  }
  if (absl::Status s = SaveSettingsLocked(request.settings()); !s.ok()) return s;
  MR_LOG(kInfo, kLogMnt) << "alarm settings saved by " << caller.node_name
                         << ": include system alarms in emails "
                         << (settings_.include_system_alarms_in_emails() ? "on" : "off") << ", "
                         << settings_.admin_recipients_size() << " admin recipient(s), window "
                         << absl::FormatDuration(Window());
  return settings_;
}

absl::StatusOr<mv1::GetNotificationStatusResponse> AlarmManager::GetNotificationStatus(
    const mv1::GetNotificationStatusRequest& request) const {
  if (absl::Status s = ValidateGetNotificationStatusRequest(request); !s.ok()) return s;
  mv1::GetNotificationStatusResponse response;
  std::string id = request.notification_id();
  if (id.empty()) {
    absl::StatusOr<absl::optional<RaiseRecord>> raise =
        store_->FindRaise(request.idempotency_key());
    if (!raise.ok()) return raise.status();
    if (!raise->has_value()) {
      return absl::NotFoundError(absl::StrCat("idempotency_key: no RaiseAlarm with key \"",
                                              request.idempotency_key(), "\" is remembered"));
    }
    id = (*raise)->response.notification_id();
    if (id.empty()) return response;  // that occurrence was not emailed
  }
  absl::StatusOr<OutboxEntry> entry = outbox_->Get(id);
  if (!entry.ok()) {
    if (entry.status().code() != absl::StatusCode::kNotFound) return entry.status();
    if (!request.idempotency_key().empty()) return response;  // purged after the retention
    return absl::NotFoundError(
        absl::StrCat("notification_id: no notification \"", id, "\" on this node"));
  }
  *response.add_notifications() = entry->notification();
  return response;
}

AlarmManager::SummaryRound AlarmManager::SendDueSummaries() {
  SummaryRound round;
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  absl::StatusOr<std::vector<AlarmRecord>> due =
      store_->DueSummaries(now, options_.summaries_per_round);
  if (!due.ok()) {
    MR_LOG(kError, kLogMnt) << "cannot read due alarm summaries: " << due.status().message();
    ++round.failed;
    return round;
  }
  for (AlarmRecord& record : *due) {
    mv1::Alarm& alarm = record.alarm;
    const int64_t repeats = alarm.suppressed_count();
    const std::string not_emailed = WhyNotEmailed(alarm.type(), alarm.source_node());
    if (not_emailed.empty()) {
      AlarmMailEnvelope envelope{&settings_, options_.node_name, outbox_->NewMessageId(), now};
      absl::StatusOr<std::string> id =
          Queue(RenderSummaryMail(alarm, repeats, record.window_start, record.window_end, envelope),
                cv1::NOTIFICATION_KIND_ALARM_SUMMARY, "", "");
      if (!id.ok()) {
        // Logged, not raised as an alarm: that alarm would be emailed the same failing way.
        MR_LOG(kError, kLogMnt) << "cannot queue the summary of alarm " << alarm.id() << ": "
                                << id.status().message();
        ++round.failed;
        continue;
      }
      ToProto(now, alarm.mutable_last_email_time());
      AddNotificationId(*id, &alarm);
      ++round.queued;
      MR_LOG(kInfo, kLogMnt) << "alarm " << alarm.id() << " [" << alarm.dedup_key()
                             << "]: summary of " << repeats << " suppressed repeat(s) queued as "
                             << *id;
    } else {
      MR_LOG(kInfo, kLogMnt) << "alarm " << alarm.id() << ": " << repeats
                             << " suppressed repeat(s) not summarized because " << not_emailed;
    }
    alarm.set_suppressed_count(0);
    if (absl::Status s = store_->Save(record); !s.ok()) {
      MR_LOG(kError, kLogMnt) << "cannot record the summary of alarm " << alarm.id() << ": "
                              << s.message();
      ++round.failed;
    }
  }
  return round;
}

absl::optional<absl::Time> AlarmManager::NextSummaryTime() const {
  absl::StatusOr<absl::optional<absl::Time>> next = store_->NextSummaryTime();
  if (!next.ok()) {
    MR_LOG(kError, kLogMnt) << "cannot read the next summary time: " << next.status().message();
    return absl::nullopt;
  }
  return *next;
}

void AlarmManager::Purge() {
  const absl::Time before = clock_->Now() - options_.retention;
  absl::StatusOr<int64_t> keys = store_->PurgeRaises(before);
  if (!keys.ok()) {
    MR_LOG(kError, kLogMnt) << "cannot purge idempotency keys: " << keys.status().message();
  } else if (*keys > 0) {
    MR_LOG(kInfo, kLogMnt) << "forgot " << *keys << " RaiseAlarm idempotency key(s)";
  }
  absl::StatusOr<int64_t> entries = outbox_->Purge();
  if (!entries.ok()) {
    MR_LOG(kError, kLogOutbox) << "cannot purge the outbox: " << entries.status().message();
  } else if (*entries > 0) {
    MR_LOG(kInfo, kLogOutbox) << "purged " << *entries << " finished outbox entries";
  }
}

void AlarmManager::SetWakeCallback(std::function<void()> callback) {
  wake_.Set(std::move(callback));
}

}  // namespace mailroom::mnt
