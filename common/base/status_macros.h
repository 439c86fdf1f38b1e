// Status propagation macros for absl::Status / absl::StatusOr code.
//
//   MR_RETURN_IF_ERROR(expr);           returns expr's status from the caller if not OK.
//   MR_ASSIGN_OR_RETURN(lhs, expr);     evaluates an absl::StatusOr<T> expression; returns its
//                                       status if not OK, otherwise moves the value into `lhs`
//                                       (which may be a declaration: `auto x`, `std::string s`).
//
// Header-only; no state, so thread-safe.
#ifndef MAILROOM_COMMON_BASE_STATUS_MACROS_H_
#define MAILROOM_COMMON_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MR_RETURN_IF_ERROR(expr)                                \
  do {                                                          \
    if (::absl::Status mr_status_ = (expr); !mr_status_.ok()) { \
      return mr_status_;                                        \
    }                                                           \
  } while (false)

#define MR_STATUS_MACROS_CONCAT_INNER_(a, b) a##b
#define MR_STATUS_MACROS_CONCAT_(a, b) MR_STATUS_MACROS_CONCAT_INNER_(a, b)

#define MR_ASSIGN_OR_RETURN(lhs, expr) \
  MR_ASSIGN_OR_RETURN_IMPL_(MR_STATUS_MACROS_CONCAT_(mr_statusor_, __LINE__), lhs, expr)

#define MR_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                              \
  if (!statusor.ok()) {                                \
    return std::move(statusor).status();               \
  }                                                    \
  lhs = *std::move(statusor)

#endif  // MAILROOM_COMMON_BASE_STATUS_MACROS_H_
