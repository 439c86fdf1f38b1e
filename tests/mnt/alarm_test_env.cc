#include "tests/mnt/alarm_test_env.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace mailroom::mnt::testing {

namespace mv1 = ::mailroom::mnt::v1;

mv1::AlarmSettings EmailingSettings() {
  mv1::AlarmSettings settings;
  settings.set_include_system_alarms_in_emails(true);
  settings.mutable_sender()->set_address(kSender);
  settings.mutable_sender()->set_display_name("mailroom alarms");
  settings.add_admin_recipients()->set_address(kAdmin);
  settings.mutable_suppression_window()->set_seconds(300);
  return settings;
}

mv1::RaiseAlarmRequest Request(const std::string& key, const std::string& dedup_key,
                               const std::string& text) {
  mv1::RaiseAlarmRequest request;
  request.set_type(mv1::ALARM_TYPE_GENERIC);
  request.set_source_node("psn1");
  request.set_dedup_key(dedup_key);
  request.set_text(text);
  request.set_idempotency_key(key);
  return request;
}

AlarmTestEnv::AlarmTestEnv(const mv1::AlarmSettings& settings) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  dir_ = absl::StrCat(tmp ? tmp : "/tmp", "/", info->test_suite_name(), "-", info->name());
  EXPECT_EQ(std::system(absl::StrCat("rm -rf '", dir_, "' && mkdir -p '", dir_, "'").c_str()), 0);
  OutboxOptions options;
  options.node_name = kMntNode;
  options.random_unit = [] { return 0.5; };
  options.sync_every_commit = false;  // tests do not survive power cuts; keep them fast
  absl::StatusOr<std::unique_ptr<Outbox>> outbox =
      Outbox::Open(absl::StrCat(dir_, "/outbox.db"), &clock_, options);
  EXPECT_TRUE(outbox.ok()) << outbox.status();
  outbox_ = *std::move(outbox);
  Restart(settings);
}

AlarmTestEnv::~AlarmTestEnv() = default;

void AlarmTestEnv::Restart(const mv1::AlarmSettings& initial, bool lose_store) {
  manager_.reset();
  store_.reset();
  if (lose_store) {
    EXPECT_EQ(std::system(absl::StrCat("rm -f '", dir_, "/alarms.db'*").c_str()), 0);
  }
  absl::StatusOr<std::unique_ptr<AlarmStore>> store =
      AlarmStore::Open(absl::StrCat(dir_, "/alarms.db"));
  EXPECT_TRUE(store.ok()) << store.status();
  store_ = *std::move(store);
  AlarmManagerOptions options;
  options.node_name = kMntNode;
  manager_ = std::make_unique<AlarmManager>(store_.get(), outbox_.get(), &clock_, options);
  const absl::Status started = manager_->Start(initial);
  EXPECT_TRUE(started.ok()) << started;
}

std::vector<mailroom::common::v1::OutboxEntry> AlarmTestEnv::Entries() {
  mailroom::common::v1::ListOutboxRequest request;
  request.mutable_page()->set_page_size(1000);
  absl::StatusOr<mailroom::common::v1::ListOutboxResponse> list = outbox_->List(request);
  EXPECT_TRUE(list.ok()) << list.status();
  if (!list.ok()) return {};
  return {list->entries().begin(), list->entries().end()};
}

std::vector<mailroom::testing::MimeEntity> AlarmTestEnv::TakeMessages() {
  std::vector<mailroom::testing::MimeEntity> messages;
  absl::StatusOr<std::vector<ClaimedNotification>> claimed = outbox_->ClaimDue(1000);
  EXPECT_TRUE(claimed.ok()) << claimed.status();
  if (!claimed.ok()) return messages;
  for (const ClaimedNotification& n : *claimed) {
    absl::StatusOr<mailroom::testing::MimeEntity> parsed = mailroom::testing::ParseMime(n.message);
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    if (parsed.ok()) messages.push_back(*std::move(parsed));
  }
  return messages;
}

}  // namespace mailroom::mnt::testing
