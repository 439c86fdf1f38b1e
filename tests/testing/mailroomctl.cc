#include "tests/testing/mailroomctl.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/util/json_util.h"
#include "tests/testing/testbed.h"

namespace mailroom::testing {
namespace {

std::string ShellQuoted(const std::string& word) {
  return absl::StrCat("'", absl::StrReplaceAll(word, {{"'", "'\\''"}}), "'");
}

}  // namespace

Mailroomctl::Mailroomctl(const std::string& dir, const std::string& certs,
                         const std::string& targets_text)
    : dir_(dir), config_(absl::StrCat(dir, "/admin.textproto")) {
  if (std::system(absl::StrCat("mkdir -p ", ShellQuoted(dir)).c_str()) != 0) {
    std::cerr << "cannot create " << dir << "\n";
  }
  std::ofstream(config_) << "tls { ca_file: \"" << certs << "/ca.pem\" cert_file: \"" << certs
                         << "/admin.pem\" key_file: \"" << certs << "/admin.key\" }\n"
                         << targets_text << "\n";
}

CtlResult Mailroomctl::Run(const std::vector<std::string>& args,
                           const std::string& stdin_text) const {
  std::string command = absl::StrCat(ShellQuoted(TestbedRunfile("cli/mailroomctl")),
                                     " --config=", ShellQuoted(config_));
  for (const std::string& arg : args) absl::StrAppend(&command, " ", ShellQuoted(arg));
  if (!stdin_text.empty()) {
    const std::string input = absl::StrCat(dir_, "/stdin");
    std::ofstream(input) << stdin_text;
    absl::StrAppend(&command, " < ", ShellQuoted(input));
  }
  CtlResult result;
  FILE* pipe = popen(absl::StrCat(command, " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::cout << "$ mailroomctl " << absl::StrJoin(args, " ") << "\n"
            << result.output << "(exit " << result.exit_code << ")\n";
  return result;
}

absl::Status ParseJsonOutput(const std::string& output, google::protobuf::Message* message) {
  const size_t begin = output.find('{');
  const size_t end = output.rfind('}');
  if (begin == std::string::npos || end == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("no JSON object in: ", output));
  }
  const auto parsed =
      google::protobuf::util::JsonStringToMessage(output.substr(begin, end - begin + 1), message);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a ", message->GetTypeName(), ": ", parsed.ToString()));
  }
  return absl::OkStatus();
}

}  // namespace mailroom::testing
