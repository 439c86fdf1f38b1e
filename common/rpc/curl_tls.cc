#include "common/rpc/curl_tls.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace mailroom {

std::vector<CertificateSummary> CertificatesOf(CURL* curl) {
  std::vector<CertificateSummary> chain;
  curl_certinfo* info = nullptr;
  if (curl_easy_getinfo(curl, CURLINFO_CERTINFO, &info) != CURLE_OK || info == nullptr) {
    return chain;
  }
  for (int i = 0; i < info->num_of_certs; ++i) {
    CertificateSummary summary;
    for (curl_slist* field = info->certinfo[i]; field != nullptr; field = field->next) {
      std::pair<absl::string_view, absl::string_view> name_value =
          absl::StrSplit(field->data, absl::MaxSplits(':', 1));
      const std::string value(name_value.second);
      if (name_value.first == "Subject") summary.subject = value;
      if (name_value.first == "Issuer") summary.issuer = value;
      if (name_value.first == "Start date") summary.not_before = value;
      if (name_value.first == "Expire date") summary.not_after = value;
      if (name_value.first == "X509v3 Subject Alternative Name") summary.subject_alt_names = value;
      if (name_value.first == "Cert") summary.pem = value;
    }
    chain.push_back(std::move(summary));
  }
  return chain;
}

std::string FormatChain(const std::vector<CertificateSummary>& chain) {
  std::string out = "Certificates the server presented (leaf first):";
  for (size_t i = 0; i < chain.size(); ++i) {
    absl::StrAppend(&out, "\n  [", i, "] subject: ", chain[i].subject,
                    "\n      issuer: ", chain[i].issuer,
                    "\n      valid until: ", chain[i].not_after);
    if (!chain[i].subject_alt_names.empty()) {
      absl::StrAppend(&out, "\n      names: ", chain[i].subject_alt_names);
    }
  }
  return out;
}

bool HostNameMismatch(CURL* curl, long* verify_result, bool of_proxy) {
  long result = 0;
  curl_easy_getinfo(curl, of_proxy ? CURLINFO_PROXY_SSL_VERIFYRESULT : CURLINFO_SSL_VERIFYRESULT,
                    &result);
  if (verify_result != nullptr) *verify_result = result;
  return result == 0 || result == 1 || result == 62 /*X509_V_ERR_HOSTNAME_MISMATCH*/ ||
         result == 64 /*X509_V_ERR_IP_ADDRESS_MISMATCH*/;
}

std::string SystemCaBundle(CURL* curl) {
  char* path = nullptr;
  if (curl_easy_getinfo(curl, CURLINFO_CAINFO, &path) != CURLE_OK || path == nullptr) return "";
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

std::string HostForUrl(const std::string& host) {
  return absl::StrContains(host, ':') ? absl::StrCat("[", host, "]") : host;
}

}  // namespace mailroom
