#include "common/crypto/aes_gcm.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/status_macros.h"
#include "common/crypto/openssl_util.h"

namespace mailroom::crypto {
namespace {

// Closes a file descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }
  // Closes now and reports close's errno (0 on success): a failed close can lose data.
  int Close() {
    int rc = close(fd_);
    fd_ = -1;
    return rc == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

const unsigned char* Bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

unsigned char* MutableBytes(std::string& s) { return reinterpret_cast<unsigned char*>(&s[0]); }

absl::Status CheckKey(absl::string_view key) {
  if (key.size() != kAesGcmKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES-256-GCM key must be ", kAesGcmKeySize, " bytes, got ", key.size()));
  }
  return absl::OkStatus();
}

absl::Status CheckLength(absl::string_view what, absl::string_view data) {
  if (data.size() > static_cast<size_t>(INT_MAX) - kSealOverhead) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is too large: ", data.size(), " bytes"));
  }
  return absl::OkStatus();
}

// Feeds the authenticated-only data: the version byte, then the caller's associated data.
bool UpdateAad(EVP_CIPHER_CTX* ctx, bool encrypt, absl::string_view associated_data) {
  const unsigned char version = kSealVersion;
  int len = 0;
  auto update = encrypt ? EVP_EncryptUpdate : EVP_DecryptUpdate;
  if (update(ctx, nullptr, &len, &version, 1) != 1) return false;
  if (associated_data.empty()) return true;
  return update(ctx, nullptr, &len, Bytes(associated_data),
                static_cast<int>(associated_data.size())) == 1;
}

// A context for one AES-256-GCM seal (`encrypt`) or open with `key` and `nonce`, the version
// byte and `associated_data` already fed in; null if OpenSSL fails. Both directions go
// through here so that they cannot drift apart.
EvpCipherCtxPtr StartGcm(bool encrypt, absl::string_view key, const unsigned char* nonce,
                   absl::string_view associated_data) {
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  const int enc = encrypt ? 1 : 0;
  if (ctx == nullptr ||
      EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr, enc) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kAesGcmNonceSize, nullptr) != 1 ||
      EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, Bytes(key), nonce, enc) != 1 ||
      !UpdateAad(ctx.get(), encrypt, associated_data)) {
    return nullptr;
  }
  return ctx;
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot write key file ", path));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CreateKeyFile(const std::string& path) {
  std::string key(kAesGcmKeySize, '\0');
  unsigned char suffix[8];
  if (RAND_bytes(MutableBytes(key), static_cast<int>(key.size())) != 1 ||
      RAND_bytes(suffix, sizeof(suffix)) != 1) {
    OPENSSL_cleanse(&key[0], key.size());
    return absl::InternalError("RAND_bytes failed while creating a key");
  }
  const std::string tmp = absl::StrCat(
      path, ".tmp.", getpid(), ".",
      absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(suffix), sizeof(suffix))));

  // Write the whole key to a private temporary file, then publish it with link(), which
  // fails rather than replace an existing file: a reader sees no file or a complete one.
  absl::Status status = [&]() -> absl::Status {
    Fd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.get() < 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot create key file ", tmp));
    }
    // Exactly 0600 whatever the umask (which could have removed owner bits).
    if (fchmod(fd.get(), 0600) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot chmod key file ", tmp));
    }
    absl::Status written = WriteAll(fd.get(), key, tmp);
    if (!written.ok()) return written;
    if (fsync(fd.get()) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot fsync key file ", tmp));
    }
    if (int err = fd.Close(); err != 0) {
      return absl::ErrnoToStatus(err, absl::StrCat("cannot close key file ", tmp));
    }
    return absl::OkStatus();
  }();
  if (!status.ok()) {
    unlink(tmp.c_str());
    OPENSSL_cleanse(&key[0], key.size());
    return status;
  }

  const int link_rc = link(tmp.c_str(), path.c_str());
  const int link_errno = errno;
  unlink(tmp.c_str());
  if (link_rc != 0) {
    OPENSSL_cleanse(&key[0], key.size());
    // Another process created it first: use its key.
    if (link_errno == EEXIST) return LoadKeyFile(path);
    return absl::ErrnoToStatus(link_errno, absl::StrCat("cannot create key file ", path));
  }

  // Make the new directory entry durable too.
  const std::string dir = DirectoryOf(path);
  Fd dir_fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0 || fsync(dir_fd.get()) != 0) {
    OPENSSL_cleanse(&key[0], key.size());
    return absl::ErrnoToStatus(
        errno, absl::StrCat("cannot fsync directory ", dir, " after creating key file ", path));
  }
  return key;
}

}  // namespace

absl::StatusOr<std::string> Seal(absl::string_view key, absl::string_view plaintext,
                                 absl::string_view associated_data) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  if (absl::Status s = CheckLength("plaintext", plaintext); !s.ok()) return s;
  if (absl::Status s = CheckLength("associated data", associated_data); !s.ok()) return s;

  std::string blob(kSealOverhead + plaintext.size(), '\0');
  unsigned char* out = MutableBytes(blob);
  unsigned char* nonce = out + 1;
  unsigned char* ciphertext = nonce + kAesGcmNonceSize;
  unsigned char* tag = ciphertext + plaintext.size();
  out[0] = kSealVersion;
  if (RAND_bytes(nonce, kAesGcmNonceSize) != 1) {
    return absl::InternalError("RAND_bytes failed while making a nonce");
  }

  EvpCipherCtxPtr ctx = StartGcm(/*encrypt=*/true, key, nonce, associated_data);
  int len = 0;
  bool ok = ctx != nullptr;
  if (ok && !plaintext.empty()) {
    ok = EVP_EncryptUpdate(ctx.get(), ciphertext, &len, Bytes(plaintext),
                           static_cast<int>(plaintext.size())) == 1 &&
         static_cast<size_t>(len) == plaintext.size();
  }
  int final_len = 0;
  ok = ok && EVP_EncryptFinal_ex(ctx.get(), ciphertext + plaintext.size(), &final_len) == 1 &&
       final_len == 0 &&
       EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kAesGcmTagSize, tag) == 1;
  if (!ok) return absl::InternalError("AES-256-GCM encryption failed in OpenSSL");
  return blob;
}

absl::StatusOr<std::string> Open(absl::string_view key, absl::string_view blob,
                                 absl::string_view associated_data) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  if (absl::Status s = CheckLength("associated data", associated_data); !s.ok()) return s;
  if (blob.size() < kSealOverhead) {
    return absl::DataLossError(absl::StrCat("sealed record is truncated: ", blob.size(),
                                            " bytes, at least ", kSealOverhead, " expected"));
  }
  if (blob.size() > static_cast<size_t>(INT_MAX)) {
    return absl::DataLossError(absl::StrCat("sealed record is too large: ", blob.size()));
  }
  const unsigned char version = static_cast<unsigned char>(blob[0]);
  if (version != kSealVersion) {
    return absl::DataLossError(absl::StrCat("sealed record has unknown version ", version,
                                            " (expected ", kSealVersion, ")"));
  }
  const unsigned char* nonce = Bytes(blob) + 1;
  const unsigned char* ciphertext = nonce + kAesGcmNonceSize;
  const size_t ciphertext_size = blob.size() - kSealOverhead;
  unsigned char tag[kAesGcmTagSize];
  std::copy(ciphertext + ciphertext_size, ciphertext + ciphertext_size + kAesGcmTagSize, tag);

  std::string plaintext(ciphertext_size, '\0');
  EvpCipherCtxPtr ctx = StartGcm(/*encrypt=*/false, key, nonce, associated_data);
  int len = 0;
  bool ok = ctx != nullptr;
  if (ok && ciphertext_size > 0) {
    ok = EVP_DecryptUpdate(ctx.get(), MutableBytes(plaintext), &len, ciphertext,
                           static_cast<int>(ciphertext_size)) == 1 &&
         static_cast<size_t>(len) == ciphertext_size;
  }
  ok = ok && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kAesGcmTagSize, tag) == 1;
  if (!ok) {
    OPENSSL_cleanse(&plaintext[0], plaintext.size());
    return absl::InternalError("AES-256-GCM decryption failed in OpenSSL");
  }
  int final_len = 0;
  // Unsigned plaintext must never escape: wipe it when the tag does not verify.
  unsigned char* end = MutableBytes(plaintext) + ciphertext_size;
  if (EVP_DecryptFinal_ex(ctx.get(), end, &final_len) != 1 || final_len != 0) {
    OPENSSL_cleanse(&plaintext[0], plaintext.size());
    return absl::DataLossError(
        "sealed record failed authentication: wrong key, wrong associated data (the record's "
        "identity), or the record was tampered with");
  }
  return plaintext;
}

absl::Status CheckKeyFileMode(const std::string& path, mode_t mode, gid_t file_group,
                              gid_t process_group, absl::string_view what) {
  // Group read is tolerated only for the process's own non-root group (Kubernetes mounts a
  // Secret with defaultMode 0400 as 0440 root:<fsGroup>, and fsGroup is the pod's runAsGroup;
  // under systemd each role has a group of its own). Any other group or other access, and
  // group write, is refused.
  const bool own_group_read_only =
      (mode & 070) == 040 && file_group == process_group && process_group != 0;
  if ((mode & 07) == 0 && ((mode & 070) == 0 || own_group_read_only)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrFormat(
      "%s %s has mode %04o (group %d), which lets another user or group access it; "
      "refusing to use it (a %s must be mode 0600 or 0400, or 0440 with the process's "
      "own group as in a Kubernetes Secret with fsGroup: chmod 600 %s)",
      what, path, mode & 07777, static_cast<int>(file_group), what, path));
}

absl::StatusOr<std::string> LoadKeyFile(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("key file ", path, " does not exist"));
    }
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot open key file ", path));
  }
  // Checks go through the open descriptor, so they apply to the file actually read.
  struct stat st;
  if (fstat(fd.get(), &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot stat key file ", path));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("key file ", path, " is not a regular file"));
  }
  MR_RETURN_IF_ERROR(CheckKeyFileMode(path, st.st_mode, st.st_gid, getegid()));
  if (st.st_size != static_cast<off_t>(kAesGcmKeySize)) {
    return absl::FailedPreconditionError(absl::StrCat("key file ", path, " is ", st.st_size,
                                                      " bytes; a key file holds exactly ",
                                                      kAesGcmKeySize, " raw bytes"));
  }

  // Read one byte more than expected to notice a file that grew since fstat.
  std::string key(kAesGcmKeySize + 1, '\0');
  size_t total = 0;
  while (total < key.size()) {
    const ssize_t n = read(fd.get(), &key[total], key.size() - total);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      OPENSSL_cleanse(&key[0], key.size());
      return absl::ErrnoToStatus(err, absl::StrCat("cannot read key file ", path));
    }
    if (n == 0) break;
    total += static_cast<size_t>(n);
  }
  if (total != kAesGcmKeySize) {
    OPENSSL_cleanse(&key[0], key.size());
    return absl::FailedPreconditionError(absl::StrCat("key file ", path, " is ", total,
                                                      " bytes; a key file holds exactly ",
                                                      kAesGcmKeySize, " raw bytes"));
  }
  key.resize(kAesGcmKeySize);  // shrinking keeps the buffer: nothing is copied
  return key;
}

absl::StatusOr<std::string> LoadOrCreateKeyFile(const std::string& path) {
  absl::StatusOr<std::string> key = LoadKeyFile(path);
  if (key.ok() || !absl::IsNotFound(key.status())) return key;
  return CreateKeyFile(path);
}

}  // namespace mailroom::crypto
