// Guest Email Settings: seeded from the config, saved atomically in the data dir, etag checks.
#include "psn/settings_store.h"

#include <sys/stat.h>

#include <fstream>

#include "tests/testing/fake_clock.h"
#include "common/rpc/status_grpc.h"
#include "gtest/gtest.h"
#include "psn/proto_file.h"
#include "tests/psn/test_util.h"

namespace mailroom::psn {
namespace {

using ::mailroom::psn::testing::IsInvalidField;
using ::mailroom::psn::testing::TestDir;

GuestEmailSettings Enabled(const std::string& from) {
  GuestEmailSettings settings;
  settings.set_notifications_enabled(true);
  settings.mutable_default_from()->set_address(from);
  return settings;
}

TEST(GuestEmailSettingsStoreTest, StartsFromTheConfigUntilSaved) {
  FakeClock clock;
  const std::string path = TestDir() + "/settings.pb";
  auto store = GuestEmailSettingsStore::Open(path, Enabled("no-reply@example.test"), &clock);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->Get().notifications_enabled());
  EXPECT_EQ((*store)->Get().default_from().address(), "no-reply@example.test");
  EXPECT_FALSE((*store)->Get().etag().empty());
  struct stat info;
  EXPECT_NE(stat(path.c_str(), &info), 0) << "nothing is written until an admin saves";
}

TEST(GuestEmailSettingsStoreTest, UnsetConfigMeansNotificationsOff) {
  FakeClock clock;
  auto store =
      GuestEmailSettingsStore::Open(TestDir() + "/settings.pb", GuestEmailSettings(), &clock);
  ASSERT_TRUE(store.ok());
  EXPECT_FALSE((*store)->Get().notifications_enabled());
}

TEST(GuestEmailSettingsStoreTest, BadConfigStopsTheStartNamingTheField) {
  FakeClock clock;
  GuestEmailSettings settings;
  settings.set_notifications_enabled(true);
  EXPECT_TRUE(IsInvalidField(
      GuestEmailSettingsStore::Open(TestDir() + "/s.pb", settings, &clock).status(),
      "psn.guest_email_settings.default_from.address"));
}

TEST(GuestEmailSettingsStoreTest, SavedSettingsWinOverTheConfigAfterARestart) {
  FakeClock clock;
  const std::string path = TestDir() + "/settings.pb";
  {
    auto store = GuestEmailSettingsStore::Open(path, Enabled("a@example.test"), &clock);
    ASSERT_TRUE(store.ok());
    GuestEmailSettings off;
    off.mutable_default_from()->set_address("b@example.test");
    auto saved = (*store)->Set(off, "");
    ASSERT_TRUE(saved.ok()) << saved.status();
    EXPECT_EQ(saved->update_time().seconds(), absl::ToUnixSeconds(clock.Now()));
  }
  struct stat info;
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);
  auto reopened = GuestEmailSettingsStore::Open(path, Enabled("a@example.test"), &clock);
  ASSERT_TRUE(reopened.ok());
  EXPECT_FALSE((*reopened)->Get().notifications_enabled());
  EXPECT_EQ((*reopened)->Get().default_from().address(), "b@example.test");
}

TEST(GuestEmailSettingsStoreTest, StaleEtagIsAbortedAndNothingChanges) {
  FakeClock clock;
  auto store = GuestEmailSettingsStore::Open(TestDir() + "/s.pb", Enabled("a@example.test"),
                                             &clock);
  ASSERT_TRUE(store.ok());
  const std::string etag = (*store)->Get().etag();
  ASSERT_TRUE((*store)->Set(Enabled("b@example.test"), etag).ok());
  absl::Status stale = (*store)->Set(Enabled("c@example.test"), etag).status();
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ReasonOf(stale), "ETAG_MISMATCH");
  EXPECT_EQ((*store)->Get().default_from().address(), "b@example.test");
}

TEST(GuestEmailSettingsStoreTest, EtagIsAContentHash) {
  FakeClock clock;
  auto one = GuestEmailSettingsStore::Open(TestDir() + "/one.pb", GuestEmailSettings(), &clock);
  auto two = GuestEmailSettingsStore::Open(TestDir() + "/two.pb", GuestEmailSettings(), &clock);
  ASSERT_TRUE(one.ok() && two.ok());
  auto a = (*one)->Set(Enabled("x@example.test"), "");
  clock.Advance(absl::Minutes(5));
  auto b = (*two)->Set(Enabled("x@example.test"), "");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->etag(), b->etag());
  auto c = (*two)->Set(Enabled("y@example.test"), "");
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->etag(), c->etag());
}

TEST(GuestEmailSettingsStoreTest, InvalidSettingsNameTheField) {
  FakeClock clock;
  auto store = GuestEmailSettingsStore::Open(TestDir() + "/s.pb", GuestEmailSettings(), &clock);
  ASSERT_TRUE(store.ok());
  EXPECT_TRUE(IsInvalidField((*store)->Set(Enabled(""), "").status(),
                             "settings.default_from.address"));
  EXPECT_TRUE(IsInvalidField((*store)->Set(Enabled("no-reply@example.test\r\nBcc: x@y.z"), "")
                                 .status(),
                             "settings.default_from.address"));
  GuestEmailSettings named = Enabled("no-reply@example.test");
  named.mutable_default_from()->set_display_name("Guest\nAccess");
  EXPECT_TRUE(IsInvalidField((*store)->Set(named, "").status(),
                             "settings.default_from.display_name"));
}

TEST(GuestEmailSettingsStoreTest, DamagedFileStopsTheStart) {
  FakeClock clock;
  const std::string path = TestDir() + "/settings.pb";
  std::ofstream(path) << "\xff\xff\xff not a protobuf";
  EXPECT_EQ(GuestEmailSettingsStore::Open(path, GuestEmailSettings(), &clock).status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace mailroom::psn
