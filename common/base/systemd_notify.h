// Provides NotifySystemdReady, which tells systemd (Type=notify units) that the service is
// serving, by the sd_notify protocol: one datagram "READY=1" to $NOTIFY_SOCKET. Does nothing
// when not started by systemd. Implemented here (a few lines) rather than linking libsystemd.
// Thread-safe.
#ifndef MAILROOM_COMMON_SYSTEMD_NOTIFY_H_
#define MAILROOM_COMMON_SYSTEMD_NOTIFY_H_

#include "absl/strings/string_view.h"

namespace mailroom {

// Sends `state` (e.g. "READY=1", "STOPPING=1") to systemd; returns whether it was sent.
bool NotifySystemd(absl::string_view state);
inline bool NotifySystemdReady() { return NotifySystemd("READY=1"); }

}  // namespace mailroom

#endif  // MAILROOM_COMMON_SYSTEMD_NOTIFY_H_
