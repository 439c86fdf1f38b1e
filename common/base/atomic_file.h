// Provides WriteFileAtomically, the one way mailroom replaces a small file (saved settings,
// templates, broker state): the content goes to a temporary file in the same directory,
// which is fsynced, renamed over the target, and the directory fsynced, so a crash or
// kill -9 at any point leaves either the old or the new content, never a torn file, and a
// completed write survives a power cut. Stateless; concurrent writers of one path must be
// serialized by the caller.
#ifndef MAILROOM_COMMON_BASE_ATOMIC_FILE_H_
#define MAILROOM_COMMON_BASE_ATOMIC_FILE_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mailroom {

// Replaces `path` with `content`, file mode `mode` (whatever the umask). UNAVAILABLE naming
// the file and the system error on any I/O failure, in which case the previous content is
// unchanged and no temporary file is left behind.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view content,
                                 mode_t mode = 0600);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_BASE_ATOMIC_FILE_H_
