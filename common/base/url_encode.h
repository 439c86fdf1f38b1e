// Provides UrlEncode, the one percent-encoder of mailroom (libcurl's curl_easy_escape):
// every byte but the RFC 3986 unreserved characters (ALPHA DIGIT - . _ ~) becomes %XX in
// upper-case hex. Used for application/x-www-form-urlencoded values, URL parts, and by the
// redactor to recognise a secret in its encoded form. Stateless and thread-safe.
#ifndef MAILROOM_COMMON_BASE_URL_ENCODE_H_
#define MAILROOM_COMMON_BASE_URL_ENCODE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace mailroom {

std::string UrlEncode(absl::string_view value);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_BASE_URL_ENCODE_H_
