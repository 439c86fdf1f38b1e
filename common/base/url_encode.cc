#include "common/base/url_encode.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdlib>

namespace mailroom {

std::string UrlEncode(absl::string_view value) {
  // curl_easy_escape takes an int length (0 meaning "use strlen"), so long input goes in
  // chunks; the encoding is per byte, so chunking does not change the result.
  constexpr size_t kChunk = size_t{1} << 30;
  std::string out;
  while (!value.empty()) {
    const size_t n = std::min(value.size(), kChunk);
    // The handle argument is unused since libcurl 7.82.
    char* escaped = curl_easy_escape(nullptr, value.data(), static_cast<int>(n));
    if (escaped == nullptr) std::abort();  // out of memory, as operator new would
    out.append(escaped);
    curl_free(escaped);
    value.remove_prefix(n);
  }
  return out;
}

}  // namespace mailroom
