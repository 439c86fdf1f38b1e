#include "common/mail/address_checks.h"

#include <string>

#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "common/mail/email_address.h"

namespace mailroom {

bool CheckEmailAddress(FieldErrors* errors, absl::string_view field,
                       const mailroom::common::v1::EmailAddress& address, bool required) {
  const size_t before = errors->size();
  const std::string address_field = absl::StrCat(field, ".address");
  if (address.address().empty()) {
    if (required) {
      errors->Add(address_field, "is required");
    } else if (!address.display_name().empty()) {
      errors->Add(address_field, "is required with a display_name");
    }
  } else if (CheckText(errors, address_field, address.address(), Line(0))) {
    if (absl::Status status = ValidateEmailAddress(address.address(), address_field);
        !status.ok()) {
      // ValidateEmailAddress already names the field.
      absl::string_view problem = status.message();
      absl::ConsumePrefix(&problem, absl::StrCat(address_field, ": "));
      errors->Add(address_field, problem);
    }
  }
  CheckText(errors, absl::StrCat(field, ".display_name"), address.display_name(),
            Line(kMaxDisplayNameChars));
  return errors->size() == before;
}

}  // namespace mailroom
