#include "psn/proto_file.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/base/atomic_file.h"

namespace mailroom::psn {
namespace {

absl::Status IoError(absl::string_view what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

absl::Status ReadProtoFile(const std::string& path, google::protobuf::Message* message) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("no file ", path));
    return IoError("cannot open", path);
  }
  std::string data;
  char buffer[65536];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const absl::Status status = IoError("cannot read", path);
      close(fd);
      return status;
    }
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  if (!message->ParseFromString(data)) {
    return absl::DataLossError(absl::StrCat(path, " is damaged (not a valid ",
                                            message->GetTypeName(), ")"));
  }
  return absl::OkStatus();
}

absl::Status WriteProtoFileAtomically(const std::string& path,
                                      const google::protobuf::Message& message) {
  return WriteFileAtomically(path, DeterministicBytes(message), 0600);
}

std::string ContentEtag(const google::protobuf::Message& message) {
  return ProtoSha256Hex(message).substr(0, 32);
}

}  // namespace mailroom::psn
