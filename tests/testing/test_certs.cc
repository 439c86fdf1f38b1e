#include "tests/testing/test_certs.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace mailroom::testing {

std::string Runfile(const std::string& workspace_path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (srcdir == nullptr || workspace == nullptr) return workspace_path;
  return absl::StrCat(srcdir, "/", workspace, "/", workspace_path);
}

std::string MakeTestCerts(const std::string& dir, const std::string& ca_name,
                          const std::string& nodes) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string out = absl::StrCat(tmp ? tmp : "/tmp", "/", dir);
  const std::string command =
      absl::StrCat("rm -rf '", out, "' && CA_NAME='", ca_name, "' bash '",
                   Runfile("deploy/gen-certs.sh"), "' '", out, "' ", nodes, " >/dev/null");
  const int rc = std::system(command.c_str());
  if (rc != 0) {
    ADD_FAILURE() << "gen-certs.sh failed (" << rc << "): " << command;
    std::abort();
  }
  return out;
}

TlsFiles NodeTlsFiles(const std::string& dir, const std::string& node) {
  return TlsFiles{absl::StrCat(dir, "/ca.pem"), absl::StrCat(dir, "/", node, ".pem"),
                  absl::StrCat(dir, "/", node, ".key")};
}

}  // namespace mailroom::testing
