#include "tests/testing/recording_listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

namespace mailroom::testing {

RecordingListener::RecordingListener() {
  listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (listener_ < 0 || bind(listener_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      listen(listener_, 16) != 0 ||
      getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return;
  }
  port_ = ntohs(address.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

RecordingListener::~RecordingListener() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (listener_ >= 0) close(listener_);
}

int RecordingListener::connections() const {
  absl::MutexLock lock(&mu_);
  return connections_;
}

std::string RecordingListener::received() const {
  absl::MutexLock lock(&mu_);
  return received_;
}

void RecordingListener::Serve() {
  std::vector<pollfd> fds = {{listener_, POLLIN, 0}};
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    if (poll(fds.data(), fds.size(), 50) <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      if (i == 0) {
        const int peer = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (peer < 0) continue;
        fds.push_back({peer, POLLIN, 0});
        absl::MutexLock lock(&mu_);
        ++connections_;
        continue;
      }
      char buffer[4096];
      const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        absl::MutexLock lock(&mu_);
        received_.append(buffer, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;  // poll ignores negative descriptors
      }
    }
  }
  for (size_t i = 1; i < fds.size(); ++i) {
    if (fds[i].fd >= 0) close(fds[i].fd);
  }
}

}  // namespace mailroom::testing
