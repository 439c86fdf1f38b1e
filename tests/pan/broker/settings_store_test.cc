// SettingsStore on real files: the whole record round-trips sealed; changing any byte of
// the file is refused at load; a file of the first format (only the credential sealed)
// still loads, marked for rewriting, and a save turns it into the sealed format.
#include "pan/broker/settings_store.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/aes_gcm.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::broker {
namespace {

using ::testing::HasSubstr;

constexpr char kSecret[] = "Zx9~super.SECRET-value_1234";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteAll(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

class SettingsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(getenv("TEST_TMPDIR"), "/",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_EQ(system(absl::StrCat("rm -rf ", dir_, " && mkdir -p ", dir_).c_str()), 0);
    absl::StatusOr<std::string> key = crypto::LoadOrCreateKeyFile(dir_ + "/broker.key");
    ASSERT_TRUE(key.ok()) << key.status();
    key_ = *key;
    path_ = dir_ + "/state.bin";
  }

  SavedSettings Saved() {
    SavedSettings saved;
    saved.settings.set_username("noreply@contoso.com");
    saved.settings.set_tenant_id("11111111-2222-3333-4444-555555555555");
    saved.settings.set_client_id("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
    saved.settings.set_authority_host("https://login.microsoftonline.com");
    saved.settings.mutable_client_secret()->set_secret(kSecret);
    saved.settings.mutable_client_secret()->mutable_expire_time()->set_seconds(1900000000);
    saved.state.set_updated_by("admin");
    saved.state.set_etag("etag-1");
    return saved;
  }

  std::string dir_;
  std::string key_;
  std::string path_;
};

TEST_F(SettingsStoreTest, TheWholeRecordRoundTripsSealed) {
  SettingsStore store(path_, key_);
  ASSERT_TRUE(store.Save(Saved()).ok());
  const std::string file = ReadAll(path_);
  EXPECT_TRUE(absl::StartsWith(file, kSealedStateMagic));
  for (const char* clear : {kSecret, "noreply@contoso.com", "login.microsoftonline.com"}) {
    EXPECT_THAT(file, ::testing::Not(HasSubstr(clear)));
  }
  absl::StatusOr<absl::optional<SavedSettings>> loaded = store.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_FALSE((*loaded)->legacy_format);
  EXPECT_EQ((*loaded)->settings.client_secret().secret(), kSecret);
  EXPECT_EQ((*loaded)->settings.authority_host(), "https://login.microsoftonline.com");
  EXPECT_EQ((*loaded)->state.updated_by(), "admin");
  EXPECT_TRUE((*loaded)->state.settings().client_secret().secret().empty());
}

// M2: before, only the credential was sealed (bound to the username); authority_host and the
// trust stores could be edited in the file and were used at the next start.
TEST_F(SettingsStoreTest, ChangingAnyByteOfTheFileIsRefused) {
  SettingsStore store(path_, key_);
  ASSERT_TRUE(store.Save(Saved()).ok());
  const std::string original = ReadAll(path_);
  for (size_t i = 0; i < original.size(); ++i) {
    std::string altered = original;
    altered[i] ^= 0x01;
    WriteAll(path_, altered);
    absl::StatusOr<absl::optional<SavedSettings>> loaded = store.Load();
    ASSERT_FALSE(loaded.ok()) << "byte " << i << " of " << original.size() << " changed unnoticed";
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss) << "byte " << i;
  }
  WriteAll(path_, original.substr(0, original.size() - 1));
  EXPECT_EQ(store.Load().status().code(), absl::StatusCode::kDataLoss);
  WriteAll(path_, original);
  EXPECT_TRUE(store.Load().ok());
}

TEST_F(SettingsStoreTest, AnotherKeyCannotOpenIt) {
  ASSERT_TRUE(SettingsStore(path_, key_).Save(Saved()).ok());
  absl::StatusOr<std::string> other = crypto::LoadOrCreateKeyFile(dir_ + "/other.key");
  ASSERT_TRUE(other.ok());
  absl::StatusOr<absl::optional<SavedSettings>> loaded = SettingsStore(path_, *other).Load();
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("fails authentication"));
}

TEST_F(SettingsStoreTest, AFirstFormatFileLoadsAndASaveSealsIt) {
  // The first format, as the previous code wrote it: the state in the clear with the
  // credential sealed under CredentialBinding(username).
  internal::BrokerState old_state = Saved().state;
  *old_state.mutable_settings() = StripSecrets(Saved().settings);
  internal::SealedCredential credential;
  credential.set_client_secret(kSecret);
  absl::StatusOr<std::string> sealed = crypto::Seal(key_, credential.SerializeAsString(),
                                                    CredentialBinding("noreply@contoso.com"));
  ASSERT_TRUE(sealed.ok());
  old_state.set_sealed_credential(*sealed);
  WriteAll(path_, old_state.SerializeAsString());

  SettingsStore store(path_, key_);
  absl::StatusOr<absl::optional<SavedSettings>> loaded = store.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_TRUE((*loaded)->legacy_format);
  EXPECT_EQ((*loaded)->settings.client_secret().secret(), kSecret);
  EXPECT_TRUE((*loaded)->state.sealed_credential().empty());
  ASSERT_TRUE(store.Save(**loaded).ok());
  EXPECT_TRUE(absl::StartsWith(ReadAll(path_), kSealedStateMagic));
  loaded = store.Load();
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_FALSE((*loaded)->legacy_format);
  EXPECT_EQ((*loaded)->settings.client_secret().secret(), kSecret);
}

}  // namespace
}  // namespace mailroom::broker
