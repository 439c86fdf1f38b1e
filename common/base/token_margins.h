// Provides the rule by which the broker and the role nodes size their token margins: every
// margin is the configured one or a fixed fraction of the token's lifetime, whichever is
// shorter, so that a token with any lifetime (Entra ID's token-lifetime policies allow 10
// minutes; other IdPs less) is refreshed once per half-lifetime and used until shortly before
// it expires, and a freshly fetched token always qualifies (no fetch loop). Stateless and
// thread-safe.
#ifndef MAILROOM_COMMON_BASE_TOKEN_MARGINS_H_
#define MAILROOM_COMMON_BASE_TOKEN_MARGINS_H_

#include "absl/time/time.h"

namespace mailroom {

// The broker hands out a token only with at least this fraction of its lifetime left (or the
// asked-for validity, if shorter); it refreshes it once half the lifetime is gone.
inline constexpr double kTokenServeFraction = 0.25;
// A role node keeps using a token it holds until this fraction of the lifetime is left (or
// its configured minimum, if shorter): less than the broker's, so a token the broker has
// just handed over is never too short for the node that asked for it.
inline constexpr double kTokenUseFraction = 0.125;
// Tokens that live less than this are reported (TOKEN_ACQUISITION_FAILED naming the tenant's
// token-lifetime policy); they are still used, refreshed once per half-lifetime.
inline constexpr absl::Duration kMinSupportedTokenLifetime = absl::Minutes(2);

// `wanted`, but no more than `fraction` of `lifetime` (a zero or negative lifetime gives
// zero). Infinite `lifetime` (no expiry) leaves `wanted` as it is.
absl::Duration ScaledMargin(absl::Duration wanted, absl::Duration lifetime, double fraction);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_BASE_TOKEN_MARGINS_H_
