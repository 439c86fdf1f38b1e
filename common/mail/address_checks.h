// Provides the check of a common.v1.EmailAddress message in a request, with the collector and
// rules of common/base/text_checks.h: the address must be a valid mailbox
// (common/mail/email_address.h), the display name one line of at most 256 characters.
// Stateless and thread-safe.
#ifndef MAILROOM_COMMON_MAIL_ADDRESS_CHECKS_H_
#define MAILROOM_COMMON_MAIL_ADDRESS_CHECKS_H_

#include <cstddef>

#include "absl/strings/string_view.h"
#include "common/base/text_checks.h"
#include "proto/mailroom/common/v1/common.pb.h"

namespace mailroom {

inline constexpr size_t kMaxDisplayNameChars = 256;

// Checks `address` at `field` ("guests[2].email"); violations name "<field>.address" and
// "<field>.display_name". An empty address is "is required" when `required`, and also when a
// display name is given (a name without an address means a mistake). Returns whether no
// violation was added.
bool CheckEmailAddress(FieldErrors* errors, absl::string_view field,
                       const mailroom::common::v1::EmailAddress& address, bool required);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_MAIL_ADDRESS_CHECKS_H_
