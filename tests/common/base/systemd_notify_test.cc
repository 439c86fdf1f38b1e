#include "common/base/systemd_notify.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <string>

#include "gtest/gtest.h"

namespace mailroom {
namespace {

TEST(SystemdNotify, NothingToDoOutsideSystemd) {
  unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(NotifySystemdReady());
}

// systemd may hand out an abstract socket ("@..."); Bazel's TEST_TMPDIR is also too deep for
// a filesystem socket path (108 bytes), so the test listens on an abstract one.
TEST(SystemdNotify, SendsReadyToTheNotifySocket) {
  const std::string name = "mailroom-notify-test-" + std::to_string(getpid());
  const int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address = {};
  address.sun_family = AF_UNIX;
  name.copy(address.sun_path + 1, name.size());
  const socklen_t size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), size), 0);
  setenv("NOTIFY_SOCKET", ("@" + name).c_str(), 1);
  EXPECT_TRUE(NotifySystemdReady());
  char buffer[64] = {0};
  const ssize_t received = recv(fd, buffer, sizeof(buffer) - 1, MSG_DONTWAIT);
  EXPECT_EQ(std::string(buffer, received > 0 ? received : 0), "READY=1");
  close(fd);
  unsetenv("NOTIFY_SOCKET");
}

}  // namespace
}  // namespace mailroom
