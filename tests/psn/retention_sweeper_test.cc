// The sweeper purges at start and at every interval of the injected clock, and stops promptly.
#include "psn/retention_sweeper.h"

#include "absl/time/clock.h"
#include "common/fake_clock.h"
#include "gtest/gtest.h"
#include "tests/psn/test_util.h"

namespace mailroom::psn {
namespace {

using ::mailroom::psn::testing::TestDir;

bool WaitFor(const std::function<bool()>& condition) {
  for (int i = 0; i < 500 && !condition(); ++i) absl::SleepFor(absl::Milliseconds(10));
  return condition();
}

TEST(RetentionSweeperTest, PurgesSentEntriesOnceRetentionHasPassed) {
  FakeClock clock;
  OutboxOptions options;
  options.node_name = "psn1";
  options.retention = absl::Hours(24);
  options.sync_every_commit = false;
  auto outbox = Outbox::Open(TestDir() + "/outbox.db", &clock, options);
  ASSERT_TRUE(outbox.ok());
  NewNotification n;
  n.kind = common::v1::NOTIFICATION_KIND_PORTAL_TEST_EMAIL;
  n.from.set_address("no-reply@example.test");
  common::v1::Recipient to;
  to.mutable_address()->set_address("a@example.test");
  n.recipients.push_back(to);
  n.message_id = (*outbox)->NewMessageId();
  n.message = "Subject: x\r\n\r\nx\r\n";
  n.idempotency_key = "k#0";
  n.request_fingerprint = "f";
  auto queued = (*outbox)->Enqueue(n);
  ASSERT_TRUE(queued.ok());
  auto claimed = (*outbox)->ClaimDue(1);
  ASSERT_TRUE(claimed.ok() && claimed->size() == 1u);
  ASSERT_TRUE((*outbox)->MarkSent(queued->notification_id, {250, "OK"}).ok());

  RetentionSweeper sweeper(outbox->get(), &clock, absl::Hours(1));
  sweeper.Start();
  ASSERT_TRUE(WaitFor([&] { return sweeper.sweeps() >= 1; }));
  EXPECT_TRUE((*outbox)->Get(queued->notification_id).ok()) << "still within retention";
  clock.Advance(absl::Hours(25));
  ASSERT_TRUE(WaitFor([&] { return sweeper.sweeps() >= 2; }));
  EXPECT_EQ((*outbox)->Get(queued->notification_id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*outbox)->GetByIdempotencyKey("k#0").status().code(), absl::StatusCode::kNotFound);
  const absl::Time before = absl::Now();
  sweeper.Stop();
  EXPECT_LT(absl::Now() - before, absl::Seconds(5));
}

}  // namespace
}  // namespace mailroom::psn
