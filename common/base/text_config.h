// Provides loading of protobuf text-format configuration with errors an operator can act
// on: every error names the file, line and column, and the field (as a dotted path such as
// `broker.send_limits.messages_per_minute`). Semantic checks done after parsing report the
// line of the offending field too, through FieldLocator. Thread-compatible.
#ifndef MAILROOM_COMMON_TEXT_CONFIG_H_
#define MAILROOM_COMMON_TEXT_CONFIG_H_

#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "google/protobuf/text_format.h"

namespace mailroom {

// Where each field of a parsed message was written. Built while parsing.
class FieldLocator {
 public:
  FieldLocator(std::string source_name, const google::protobuf::Message* root);

  // `path` is dotted field names with optional [index] for repeated fields, e.g.
  // "logging.components[2].level". Returns "source:line:column" of the field, or just
  // "source" if the field was not written in the file (a default, or a missing field).
  std::string Where(absl::string_view path) const;

  google::protobuf::TextFormat::ParseInfoTree* tree() { return &tree_; }

 private:
  std::string source_name_;
  const google::protobuf::Message* root_;
  google::protobuf::TextFormat::ParseInfoTree tree_;
};

// Parses `text` into `message` (cleared first). On failure returns INVALID_ARGUMENT with
// every syntax error as "source:line:column: message" (protobuf's messages name the field
// and type). `locator`, if given, records field positions for later semantic errors.
absl::Status ParseTextConfig(absl::string_view text, absl::string_view source_name,
                             google::protobuf::Message* message,
                             FieldLocator* locator = nullptr);

// Reads `path` and parses it as above. A missing or unreadable file is NOT_FOUND /
// PERMISSION_DENIED naming the path.
absl::Status LoadTextConfigFile(const std::string& path, google::protobuf::Message* message,
                                FieldLocator* locator = nullptr);

// Collects semantic errors ("field: problem") and joins them into one INVALID_ARGUMENT
// that names each field with its line.
class ConfigErrors {
 public:
  explicit ConfigErrors(const FieldLocator* locator) : locator_(locator) {}
  void Add(absl::string_view field_path, absl::string_view problem);
  bool empty() const { return errors_.empty(); }
  absl::Status ToStatus() const;

 private:
  const FieldLocator* locator_;
  std::vector<std::string> errors_;
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_TEXT_CONFIG_H_
