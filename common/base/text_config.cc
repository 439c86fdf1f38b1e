#include "common/base/text_config.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/tokenizer.h"

namespace mailroom {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::TextFormat;

// The field whose value starts before `column` on `line`: the last `name:` or `name {`.
// Protobuf's messages for bad values ("Expected integer, got: ...") do not name it. A linear
// scan from the end: std::regex, used before, recursed once per character and overflowed
// the stack on a long line (found by tests/fuzz/text_config_fuzzer.cc).
std::string FieldNameBefore(absl::string_view text, int line, int column) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (line < 0 || line >= static_cast<int>(lines.size())) return "";
  const absl::string_view prefix = lines[line].substr(0, std::max(column, 0));
  const auto is_name_char = [](char c) { return absl::ascii_isalnum(c) || c == '_'; };
  for (size_t end = prefix.size(); end > 0; --end) {
    if (prefix[end - 1] != ':' && prefix[end - 1] != '{') continue;
    size_t name_end = end - 1;
    while (name_end > 0 && absl::ascii_isspace(prefix[name_end - 1])) --name_end;
    size_t name_start = name_end;
    while (name_start > 0 && is_name_char(prefix[name_start - 1])) --name_start;
    // A name starts with a letter or '_'.
    while (name_start < name_end && absl::ascii_isdigit(prefix[name_start])) ++name_start;
    if (name_start < name_end) {
      return std::string(prefix.substr(name_start, name_end - name_start));
    }
  }
  return "";
}

class CollectingErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  CollectingErrorCollector(absl::string_view source, absl::string_view text)
      : source_(source), text_(text) {}

  // Protobuf reports 0-based lines and columns; editors count from 1.
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    std::string error = absl::StrCat(source_, ":", line + 1, ":", column + 1, ": ");
    const std::string field = FieldNameBefore(text_, line, column);
    if (!field.empty() && !absl::StrContains(message, absl::StrCat("\"", field, "\""))) {
      absl::StrAppend(&error, "field \"", field, "\": ");
    }
    absl::StrAppend(&error, message);
    errors_.push_back(std::move(error));
  }
  void AddWarning(int line, google::protobuf::io::ColumnNumber column,
                  const std::string& message) override {
    AddError(line, column, absl::StrCat("warning: ", message));
  }

  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::string source_;
  absl::string_view text_;
  std::vector<std::string> errors_;
};

}  // namespace

FieldLocator::FieldLocator(std::string source_name, const google::protobuf::Message* root)
    : source_name_(std::move(source_name)), root_(root) {}

std::string FieldLocator::Where(absl::string_view path) const {
  const Descriptor* descriptor = root_->GetDescriptor();
  const TextFormat::ParseInfoTree* tree = &tree_;
  TextFormat::ParseLocation location;
  const std::vector<absl::string_view> parts = absl::StrSplit(path, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    absl::string_view name = parts[i];
    int index = -1;
    if (size_t bracket = name.find('['); bracket != absl::string_view::npos) {
      int parsed;
      if (absl::SimpleAtoi(name.substr(bracket + 1, name.size() - bracket - 2), &parsed)) {
        index = parsed;
      }
      name = name.substr(0, bracket);
    }
    const FieldDescriptor* field =
        descriptor == nullptr ? nullptr : descriptor->FindFieldByName(std::string(name));
    if (field == nullptr || tree == nullptr) break;
    const int lookup_index = field->is_repeated() ? std::max(index, 0) : -1;
    TextFormat::ParseLocation here = tree->GetLocation(field, lookup_index);
    if (here.line < 0) break;
    location = here;
    if (i + 1 < parts.size()) {
      tree = tree->GetTreeForNested(field, lookup_index);
      descriptor = field->message_type();
    }
  }
  if (location.line < 0) return source_name_;
  return absl::StrCat(source_name_, ":", location.line + 1, ":", location.column + 1);
}

absl::Status ParseTextConfig(absl::string_view text, absl::string_view source_name,
                             google::protobuf::Message* message, FieldLocator* locator) {
  message->Clear();
  CollectingErrorCollector errors(source_name, text);
  TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (locator != nullptr) parser.WriteLocationsTo(locator->tree());
  if (parser.ParseFromString(std::string(text), message)) return absl::OkStatus();
  if (errors.errors().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": cannot parse ",
                                                   message->GetTypeName()));
  }
  return absl::InvalidArgumentError(absl::StrJoin(errors.errors(), "\n"));
}

absl::Status LoadTextConfigFile(const std::string& path, google::protobuf::Message* message,
                                FieldLocator* locator) {
  std::ifstream in(path);
  if (!in) {
    const int error = errno;
    const std::string why = absl::StrCat("cannot read config file ", path, ": ",
                                         std::strerror(error));
    return error == EACCES ? absl::PermissionDeniedError(why) : absl::NotFoundError(why);
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseTextConfig(buffer.str(), path, message, locator);
}

void ConfigErrors::Add(absl::string_view field_path, absl::string_view problem) {
  const std::string where = locator_ == nullptr ? "" : locator_->Where(field_path);
  errors_.push_back(where.empty() ? absl::StrCat(field_path, ": ", problem)
                                  : absl::StrCat(where, ": ", field_path, ": ", problem));
}

absl::Status ConfigErrors::ToStatus() const {
  if (errors_.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors_, "\n"));
}

}  // namespace mailroom
