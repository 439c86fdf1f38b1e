// Provides the files of a node's configuration for tests that load one: a directory of the
// running test's own (under TEST_TMPDIR) with data/ and placeholder TLS files, and a valid
// PSN config in it written with relative paths, as an operator writes them. Test setup: not
// thread-safe.
#ifndef MAILROOM_TESTS_TESTING_NODE_CONFIG_FILES_H_
#define MAILROOM_TESTS_TESTING_NODE_CONFIG_FILES_H_

#include <string>

#include "absl/strings/string_view.h"

namespace mailroom::testing {

// Creates (if needed) TEST_TMPDIR/<test name> with data/, ca.pem, node.pem and node.key;
// returns its path.
std::string MakeNodeConfigDir();

// Writes <dir>/psn.textproto: node "psn-1", role PSN, TLS files and data_dir relative to
// `dir`, broker "broker:7000", then `extra`. Returns its path.
std::string WritePsnConfig(const std::string& dir, absl::string_view extra = "");

}  // namespace mailroom::testing

#endif  // MAILROOM_TESTS_TESTING_NODE_CONFIG_FILES_H_
