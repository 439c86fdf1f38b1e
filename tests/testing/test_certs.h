// Provides MakeTestCerts, which runs the real deploy/gen-certs.sh into a fresh directory so
// tests use certificates made exactly as an operator's are. Not thread-safe (runs a script).
#ifndef MAILROOM_TESTS_TESTING_TEST_CERTS_H_
#define MAILROOM_TESTS_TESTING_TEST_CERTS_H_

#include <string>

#include "common/rpc/tls.h"

namespace mailroom::testing {

// Creates `dir` under the test's temporary directory and runs gen-certs.sh there with the
// given CA name and NODE:ROLE list. Returns the directory; aborts the test on failure.
std::string MakeTestCerts(const std::string& dir, const std::string& ca_name,
                          const std::string& nodes);

// The TlsFiles of `node` in a directory made by MakeTestCerts.
TlsFiles NodeTlsFiles(const std::string& dir, const std::string& node);

// Reads the runfile path of a workspace file (e.g. "deploy/gen-certs.sh").
std::string Runfile(const std::string& workspace_path);

}  // namespace mailroom::testing

#endif  // MAILROOM_TESTS_TESTING_TEST_CERTS_H_
