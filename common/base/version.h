// Provides kMailroomVersion, the release every mailroom binary reports (NodeStatus, status
// views). The container image tag in deploy/kubernetes/overlays/example follows it. A
// constant: thread-safe.
#ifndef MAILROOM_COMMON_BASE_VERSION_H_
#define MAILROOM_COMMON_BASE_VERSION_H_

namespace mailroom {

inline constexpr char kMailroomVersion[] = "0.1.0";

}  // namespace mailroom

#endif  // MAILROOM_COMMON_BASE_VERSION_H_
