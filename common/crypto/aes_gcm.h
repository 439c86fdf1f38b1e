// Provides authenticated encryption of small records at rest (the token broker's client
// secret or certificate key) with AES-256-GCM, and the 32-byte key file that holds the key.
// All functions are thread-safe (they share no state; concurrent calls creating the same
// key file agree on one key).
//
// Sealed blob (binary, kSealVersion = 1):
//
//   version (1 byte) | nonce (12 bytes, random) | ciphertext (= plaintext size) | tag (16 bytes)
//
// The version byte and the caller's associated data are both authenticated (the GCM AAD is
// the version byte followed by `associated_data`). The associated data is not stored: the
// caller passes the same value to Seal and Open to bind a record to its identity, e.g.
// "mailroom.broker.settings/v1/<mailbox>", so a blob copied to another record won't open.
//
// Nonces are random (RAND_bytes), so one key may seal at most ~2^32 records (NIST SP 800-38D)
// — far beyond what a settings store writes.
//
// Key file: exactly 32 raw bytes (not hex), mode 0600, no group or other permission bits.
// Callers should OPENSSL_cleanse a key they hold once they no longer need it.
#ifndef MAILROOM_COMMON_CRYPTO_AES_GCM_H_
#define MAILROOM_COMMON_CRYPTO_AES_GCM_H_

#include <cstddef>
#include <cstdint>
#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mailroom::crypto {

inline constexpr size_t kAesGcmKeySize = 32;    // AES-256
inline constexpr size_t kAesGcmNonceSize = 12;  // 96-bit IV, GCM's native size
inline constexpr size_t kAesGcmTagSize = 16;    // full 128-bit tag
inline constexpr uint8_t kSealVersion = 1;
// version + nonce + tag: the size of a sealed empty plaintext.
inline constexpr size_t kSealOverhead = 1 + kAesGcmNonceSize + kAesGcmTagSize;

// Encrypts and authenticates `plaintext` under `key` (exactly kAesGcmKeySize bytes), binding
// it to `associated_data`. Returns the blob described above (plaintext.size() + kSealOverhead
// bytes). INVALID_ARGUMENT for a wrong-size key; INTERNAL if OpenSSL fails.
absl::StatusOr<std::string> Seal(absl::string_view key, absl::string_view plaintext,
                                 absl::string_view associated_data);

// Verifies and decrypts a blob made by Seal. Never returns partial plaintext. Errors:
//   INVALID_ARGUMENT  the key is not kAesGcmKeySize bytes;
//   DATA_LOSS         the blob is truncated (shorter than kSealOverhead), has an unknown
//                     version, or fails authentication. GCM cannot tell a wrong key, wrong
//                     associated data and a tampered blob apart, so that message names all
//                     three.
absl::StatusOr<std::string> Open(absl::string_view key, absl::string_view blob,
                                 absl::string_view associated_data);

// Reads the key at `path`, creating it first if it does not exist: 32 bytes from RAND_bytes,
// written to a temporary file in the same directory (O_CREAT|O_EXCL, mode 0600), fsync'd,
// then linked into place without replacing anything, and the directory fsync'd. A process
// racing to create the same file gets the winner's key; nobody ever reads a partial file.
// Errors are those of LoadKeyFile, or an error naming the path if creation fails.
absl::StatusOr<std::string> LoadOrCreateKeyFile(const std::string& path);

// Reads the key at `path`; never creates it. Errors name the path:
//   NOT_FOUND            the file does not exist;
//   FAILED_PRECONDITION  it is not a regular file, its mode grants any permission to others,
//                        or to a group other than the process's own non-root effective group,
//                        or write or execute to any group (the message gives the mode and the
//                        chmod to run), or its size is not 32 bytes. So 0600 and 0400 are
//                        accepted anywhere, and 0440 / 0640 only when the file's group is the
//                        process's own (a Kubernetes Secret mounted with fsGroup = runAsGroup);

//   other codes          for I/O errors (from errno).
absl::StatusOr<std::string> LoadKeyFile(const std::string& path);

// The mode rule of LoadKeyFile for a file of `mode` and group `file_group` read by a process
// whose effective group is `process_group`: OK or the FAILED_PRECONDITION above. `what` names
// the file in the message (other secret files follow the same rule: a proxy's credentials).
absl::Status CheckKeyFileMode(const std::string& path, mode_t mode, gid_t file_group,
                              gid_t process_group, absl::string_view what = "key file");

}  // namespace mailroom::crypto

#endif  // MAILROOM_COMMON_CRYPTO_AES_GCM_H_
