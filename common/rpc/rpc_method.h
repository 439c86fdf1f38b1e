// Provides MAILROOM_RPC_METHOD, the declaration of the C++ method that does one unary RPC's
// work in a role's logic class: the `impl` that MAILROOM_FORWARD_UNARY_RPC
// (common/rpc/service_call.h) forwards the request to. It takes the request message and returns
// the response message or the error. Header-only: a macro, no state.
#ifndef MAILROOM_COMMON_RPC_RPC_METHOD_H_
#define MAILROOM_COMMON_RPC_RPC_METHOD_H_

#include "absl/status/statusor.h"

// Declares, inside a logic class, the method that serves RPC `Method`, whose messages are
// named `<Method>Request` and `<Method>Response` in namespace `ns`:
//   MAILROOM_RPC_METHOD(v1, Resend);
// declares  absl::StatusOr<v1::ResendResponse> Resend(const v1::ResendRequest& request);
#define MAILROOM_RPC_METHOD(ns, Method) \
  absl::StatusOr<ns::Method##Response> Method(const ns::Method##Request& request)

#endif  // MAILROOM_COMMON_RPC_RPC_METHOD_H_
