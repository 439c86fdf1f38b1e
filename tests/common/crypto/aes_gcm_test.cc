// AES-256-GCM sealing and key files, checked against OpenSSL directly and the real file system
// under TEST_TMPDIR.
#include "common/crypto/aes_gcm.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::crypto {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

constexpr absl::string_view kSettingsAd = "mailroom.broker.settings/v1/alerts@example.com";

std::string TestKey(char fill) { return std::string(kAesGcmKeySize, fill); }

// A fresh empty directory under TEST_TMPDIR.
std::string TempDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/", name);
  EXPECT_EQ(std::system(absl::StrCat("rm -rf '", dir, "' && mkdir -p '", dir, "'").c_str()), 0);
  return dir;
}

void WriteFile(const std::string& path, const std::string& content, mode_t mode) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  ASSERT_EQ(chmod(path.c_str(), mode), 0);
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  while (dirent* e = readdir(d)) {
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") {
      names.push_back(e->d_name);
    }
  }
  closedir(d);
  return names;
}

TEST(AesGcmTest, RoundTrip) {
  const std::string key = TestKey('k');
  for (const std::string& plaintext : {std::string(), std::string("client-secret~value.123"),
                                       std::string("a\0b\xff", 4), std::string(5000, 'x')}) {
    absl::StatusOr<std::string> blob = Seal(key, plaintext, kSettingsAd);
    ASSERT_TRUE(blob.ok()) << blob.status();
    EXPECT_THAT(*blob, SizeIs(plaintext.size() + kSealOverhead));
    EXPECT_EQ((*blob)[0], static_cast<char>(kSealVersion));
    if (plaintext.size() > 8) {
      EXPECT_THAT(*blob, Not(HasSubstr(plaintext)));
    }
    absl::StatusOr<std::string> opened = Open(key, *blob, kSettingsAd);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, plaintext);
  }
}

TEST(AesGcmTest, EmptyAssociatedDataRoundTrips) {
  const std::string key = TestKey('k');
  absl::StatusOr<std::string> blob = Seal(key, "secret", "");
  ASSERT_TRUE(blob.ok());
  EXPECT_EQ(*Open(key, *blob, ""), "secret");
  EXPECT_FALSE(Open(key, *blob, "x").ok());
}

// The documented layout, decrypted with plain OpenSSL EVP calls: version | nonce | ct | tag,
// AAD = version byte followed by the associated data.
TEST(AesGcmTest, BlobMatchesTheDocumentedFormat) {
  const std::string key = TestKey('z');
  const std::string plaintext = "-----BEGIN PRIVATE KEY-----\nMIIE...";
  absl::StatusOr<std::string> blob = Seal(key, plaintext, kSettingsAd);
  ASSERT_TRUE(blob.ok());
  const auto* b = reinterpret_cast<const unsigned char*>(blob->data());
  const unsigned char* nonce = b + 1;
  const unsigned char* ct = nonce + 12;
  const size_t ct_len = blob->size() - 1 - 12 - 16;
  std::string tag = blob->substr(blob->size() - 16);
  const std::string aad = absl::StrCat(std::string(1, '\x01'), kSettingsAd);

  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  std::string out(ct_len, '\0');
  int len = 0;
  ASSERT_EQ(EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr,
                               reinterpret_cast<const unsigned char*>(key.data()), nonce),
            1);
  ASSERT_EQ(EVP_DecryptUpdate(ctx, nullptr, &len,
                              reinterpret_cast<const unsigned char*>(aad.data()), aad.size()),
            1);
  ASSERT_EQ(EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(&out[0]), &len, ct, ct_len), 1);
  ASSERT_EQ(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, &tag[0]), 1);
  EXPECT_EQ(EVP_DecryptFinal_ex(ctx, nullptr, &len), 1);
  EVP_CIPHER_CTX_free(ctx);
  EXPECT_EQ(out, plaintext);
}

TEST(AesGcmTest, TwoSealsOfTheSamePlaintextDiffer) {
  const std::string key = TestKey('k');
  absl::StatusOr<std::string> a = Seal(key, "same secret", kSettingsAd);
  absl::StatusOr<std::string> b = Seal(key, "same secret", kSettingsAd);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_NE(a->substr(1, kAesGcmNonceSize), b->substr(1, kAesGcmNonceSize));
  EXPECT_EQ(*Open(key, *a, kSettingsAd), *Open(key, *b, kSettingsAd));
}

void ExpectRefused(const absl::StatusOr<std::string>& opened, absl::string_view why) {
  ASSERT_FALSE(opened.ok()) << why;
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss) << why;
}

TEST(AesGcmTest, TamperedNonceCiphertextAndTagAreEachRefused) {
  const std::string key = TestKey('k');
  absl::StatusOr<std::string> blob = Seal(key, "client secret", kSettingsAd);
  ASSERT_TRUE(blob.ok());
  const size_t nonce_at = 1;
  const size_t ciphertext_at = 1 + kAesGcmNonceSize;
  const size_t tag_at = blob->size() - kAesGcmTagSize;
  for (auto [at, region] : {std::pair{nonce_at, "nonce"}, std::pair{ciphertext_at, "ciphertext"},
                            std::pair{tag_at, "tag"}, std::pair{blob->size() - 1, "tag end"}}) {
    std::string tampered = *blob;
    tampered[at] ^= 0x01;
    absl::StatusOr<std::string> opened = Open(key, tampered, kSettingsAd);
    ExpectRefused(opened, region);
    EXPECT_THAT(opened.status().message(), HasSubstr("tampered")) << region;
  }
  // Every single-bit flip anywhere is refused.
  for (size_t i = 0; i < blob->size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string tampered = *blob;
      tampered[i] ^= static_cast<char>(1 << bit);
      ExpectRefused(Open(key, tampered, kSettingsAd), absl::StrCat("byte ", i, " bit ", bit));
    }
  }
}

TEST(AesGcmTest, UnknownVersionIsRefused) {
  const std::string key = TestKey('k');
  std::string blob = *Seal(key, "secret", kSettingsAd);
  blob[0] = 2;
  absl::StatusOr<std::string> opened = Open(key, blob, kSettingsAd);
  ExpectRefused(opened, "version");
  EXPECT_THAT(opened.status().message(), HasSubstr("unknown version 2"));
}

TEST(AesGcmTest, TruncatedOrExtendedBlobIsRefused) {
  const std::string key = TestKey('k');
  const std::string blob = *Seal(key, "secret", kSettingsAd);
  for (size_t n = 0; n < blob.size(); ++n) {
    absl::StatusOr<std::string> opened = Open(key, blob.substr(0, n), kSettingsAd);
    ExpectRefused(opened, absl::StrCat("prefix of ", n));
    if (n < kSealOverhead) {
      EXPECT_THAT(opened.status().message(), HasSubstr("truncated"));
    }
  }
  ExpectRefused(Open(key, blob + "x", kSettingsAd), "extended");
}

TEST(AesGcmTest, WrongAssociatedDataIsRefused) {
  const std::string key = TestKey('k');
  const std::string blob = *Seal(key, "secret", "mailroom.broker.settings/v1/a@example.com");
  for (const char* ad : {"mailroom.broker.settings/v1/b@example.com",
                         "mailroom.broker.settings/v2/a@example.com", ""}) {
    absl::StatusOr<std::string> opened = Open(key, blob, ad);
    ExpectRefused(opened, ad);
    EXPECT_THAT(opened.status().message(), HasSubstr("wrong associated data"));
  }
  EXPECT_TRUE(Open(key, blob, "mailroom.broker.settings/v1/a@example.com").ok());
}

TEST(AesGcmTest, WrongKeyIsRefused) {
  const std::string blob = *Seal(TestKey('k'), "secret", kSettingsAd);
  absl::StatusOr<std::string> opened = Open(TestKey('K'), blob, kSettingsAd);
  ExpectRefused(opened, "wrong key");
  EXPECT_THAT(opened.status().message(), HasSubstr("wrong key"));
}

TEST(AesGcmTest, KeyOfTheWrongSizeIsInvalid) {
  for (size_t size : {0, 16, 24, 31, 33, 64}) {
    const std::string key(size, 'k');
    EXPECT_EQ(Seal(key, "x", "").status().code(), absl::StatusCode::kInvalidArgument) << size;
    EXPECT_EQ(Open(key, std::string(40, 0), "").status().code(), absl::StatusCode::kInvalidArgument)
        << size;
  }
}

TEST(KeyFileTest, CreatedWithMode0600AndReloadedEqual) {
  const std::string dir = TempDir("create");
  const std::string path = dir + "/broker.key";
  const mode_t old_umask = umask(0);  // a permissive umask must not widen the mode
  absl::StatusOr<std::string> created = LoadOrCreateKeyFile(path);
  umask(old_umask);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_THAT(*created, SizeIs(kAesGcmKeySize));
  EXPECT_EQ(ModeOf(path), 0600);
  EXPECT_THAT(ListDir(dir), ::testing::ElementsAre("broker.key"));  // no temporary left

  absl::StatusOr<std::string> again = LoadOrCreateKeyFile(path);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *created);
  absl::StatusOr<std::string> loaded = LoadKeyFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(*loaded, *created);

  // Raw bytes on disk.
  std::ifstream in(path, std::ios::binary);
  std::string on_disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(on_disk, *created);

  // And it is usable.
  EXPECT_EQ(*Open(*loaded, *Seal(*created, "secret", kSettingsAd), kSettingsAd), "secret");
}

TEST(KeyFileTest, RestrictiveUmaskStillGives0600) {
  const std::string path = TempDir("umask") + "/broker.key";
  const mode_t old_umask = umask(0277);
  absl::StatusOr<std::string> created = LoadOrCreateKeyFile(path);
  umask(old_umask);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(ModeOf(path), 0600);
  EXPECT_EQ(*LoadKeyFile(path), *created);
}

TEST(KeyFileTest, TwoCreatedKeysDiffer) {
  const std::string dir = TempDir("two");
  EXPECT_NE(*LoadOrCreateKeyFile(dir + "/a.key"), *LoadOrCreateKeyFile(dir + "/b.key"));
}

TEST(KeyFileTest, ConcurrentCreatorsAgreeOnOneKey) {
  const std::string dir = TempDir("race");
  const std::string path = dir + "/broker.key";
  std::vector<std::string> keys(16);
  std::vector<std::thread> threads;
  for (auto& key : keys) {
    threads.emplace_back([&path, &key] {
      absl::StatusOr<std::string> k = LoadOrCreateKeyFile(path);
      key = k.ok() ? *k : k.status().ToString();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_THAT(std::set<std::string>(keys.begin(), keys.end()), SizeIs(1));
  EXPECT_THAT(keys[0], SizeIs(kAesGcmKeySize));
  EXPECT_EQ(*LoadKeyFile(path), keys[0]);
  EXPECT_THAT(ListDir(dir), ::testing::ElementsAre("broker.key"));
}

TEST(KeyFileTest, GroupOrOtherAccessIsRefused) {
  const std::string dir = TempDir("mode");
  for (mode_t mode : {0644, 0640, 0660, 0604, 0602, 0620, 0601, 0666}) {
    const std::string path = absl::StrCat(dir, "/key-", mode);
    WriteFile(path, TestKey('k'), mode);
    for (auto* load : {&LoadKeyFile, &LoadOrCreateKeyFile}) {
      absl::StatusOr<std::string> key = (*load)(path);
      ASSERT_FALSE(key.ok()) << std::oct << mode;
      EXPECT_EQ(key.status().code(), absl::StatusCode::kFailedPrecondition);
      EXPECT_THAT(key.status().message(), HasSubstr(path));
      char mode_text[8];
      snprintf(mode_text, sizeof(mode_text), "%04o", mode);
      EXPECT_THAT(key.status().message(), HasSubstr(absl::StrCat("mode ", mode_text)));
    }
    // Not rewritten.
    EXPECT_EQ(ModeOf(path), mode);
  }
  // 0400 (read-only for the owner) is fine.
  WriteFile(dir + "/ro.key", TestKey('r'), 0400);
  EXPECT_EQ(*LoadKeyFile(dir + "/ro.key"), TestKey('r'));
}

// M6: Kubernetes turns a Secret's defaultMode 0400 into 0440 root:<fsGroup> when the pod has
// an fsGroup (the broker's does, for its state volume); that group is the process's own.
TEST(KeyFileTest, GroupReadIsAcceptedOnlyForTheProcessesOwnNonRootGroup) {
  constexpr gid_t kPodGroup = 10001;
  for (mode_t mode : {0600, 0400, 0440, 0640}) {
    EXPECT_TRUE(CheckKeyFileMode("k", mode, kPodGroup, kPodGroup).ok()) << std::oct << mode;
  }
  struct Refused {
    mode_t mode;
    gid_t file_group;
    gid_t process_group;
  };
  for (const Refused& r : {Refused{0440, kPodGroup + 1, kPodGroup},  // another group
                           Refused{0440, 0, 0},                      // root's group
                           Refused{0460, kPodGroup, kPodGroup},      // group write
                           Refused{0450, kPodGroup, kPodGroup},      // group execute
                           Refused{0444, kPodGroup, kPodGroup},      // others
                           Refused{0404, kPodGroup, kPodGroup}}) {
    absl::Status status = CheckKeyFileMode("k", r.mode, r.file_group, r.process_group);
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << std::oct << r.mode;
    EXPECT_THAT(status.message(), HasSubstr(absl::StrCat("(group ", r.file_group, ")")));
  }
}

TEST(KeyFileTest, WrongSizeIsRefused) {
  const std::string dir = TempDir("size");
  for (size_t size : {0, 1, 31, 33, 64}) {
    const std::string path = absl::StrCat(dir, "/key-", size);
    WriteFile(path, std::string(size, 'a'), 0600);
    for (auto* load : {&LoadKeyFile, &LoadOrCreateKeyFile}) {
      absl::StatusOr<std::string> key = (*load)(path);
      ASSERT_FALSE(key.ok()) << size;
      EXPECT_EQ(key.status().code(), absl::StatusCode::kFailedPrecondition);
      EXPECT_THAT(key.status().message(), HasSubstr(path));
      EXPECT_THAT(key.status().message(), HasSubstr(absl::StrCat(" is ", size, " bytes")));
    }
  }
}

TEST(KeyFileTest, LoadKeyFileNeverCreates) {
  const std::string dir = TempDir("absent");
  const std::string path = dir + "/broker.key";
  absl::StatusOr<std::string> key = LoadKeyFile(path);
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(key.status().message(), HasSubstr(path));
  EXPECT_THAT(ListDir(dir), ::testing::IsEmpty());
}

TEST(KeyFileTest, DirectoryIsNotAKeyFile) {
  const std::string dir = TempDir("dir");
  ASSERT_EQ(chmod(dir.c_str(), 0700), 0);
  absl::StatusOr<std::string> key = LoadOrCreateKeyFile(dir);
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(key.status().message(), HasSubstr("not a regular file"));
}

TEST(KeyFileTest, MissingDirectoryNamesThePath) {
  const std::string path = TempDir("missing") + "/no/such/dir/broker.key";
  absl::StatusOr<std::string> key = LoadOrCreateKeyFile(path);
  ASSERT_FALSE(key.ok());
  EXPECT_THAT(key.status().message(), HasSubstr("/no/such/dir/broker.key"));
}

}  // namespace
}  // namespace mailroom::crypto
