#include "psn/template_store.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/logging.h"
#include "common/base/text_checks.h"
#include "psn/builtin_templates.h"
#include "psn/proto_file.h"
#include "psn/psn_state.pb.h"
#include "psn/template_text.h"

namespace mailroom::psn {
namespace {

namespace v1 = ::mailroom::psn::v1;
namespace fs = std::filesystem;

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;
constexpr char kDefaultDirName[] = "_default";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// A page token: the offset of the next item and a hash of the filter it belongs to.
std::string PageToken(size_t offset, absl::string_view portal_filter) {
  v1::ListTemplatesRequest filter;
  filter.set_portal_id(std::string(portal_filter));
  return absl::StrCat(offset, ".", ContentEtag(filter).substr(0, 8));
}

absl::StatusOr<size_t> ParsePageToken(absl::string_view token, absl::string_view portal_filter) {
  if (token.empty()) return 0;
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  size_t offset = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &offset) ||
      PageToken(offset, portal_filter) != token) {
    return FieldError("page.page_token", "not a token of this listing (same filters required)");
  }
  return offset;
}

}  // namespace

std::string TemplateEtag(Template t) {
  t.clear_etag();
  t.clear_update_time();
  return ContentEtag(t);
}

TemplateStore::Key TemplateStore::KeyOf(absl::string_view portal_id, absl::string_view language,
                                        TemplateKind kind) {
  return Key(std::string(portal_id), NormalizeLanguage(language), static_cast<int>(kind));
}

absl::StatusOr<std::unique_ptr<TemplateStore>> TemplateStore::Open(
    const std::string& path, const std::string& template_dir, const Clock* clock) {
  std::unique_ptr<TemplateStore> store(new TemplateStore(path, clock));
  if (!template_dir.empty()) {
    if (absl::Status s = store->LoadDirectory(template_dir); !s.ok()) return s;
  }
  internal::SavedTemplates saved;
  absl::Status read = ReadProtoFile(path, &saved);
  if (!read.ok() && !absl::IsNotFound(read)) return read;
  absl::MutexLock lock(&store->mu_);
  for (const Template& t : saved.templates()) {
    store->saved_[KeyOf(t.portal_id(), t.language(), t.kind())] = t;
  }
  MR_LOG(kInfo, kLogPsn) << store->saved_.size() << " saved template(s), "
                         << store->directory_.size() << " from template_dir";
  return store;
}

absl::Status TemplateStore::LoadDirectory(const std::string& template_dir) {
  auto fail = [&template_dir](const fs::path& file, absl::string_view problem) {
    return absl::InvalidArgumentError(
        absl::StrCat("psn.template_dir: ", file.string(), ": ", problem));
  };
  std::error_code error;
  if (!fs::is_directory(template_dir, error)) {
    return fail(template_dir, "is not a directory");
  }
  // (portal dir, language dir, kind name) → the template being assembled from its files.
  std::map<std::tuple<std::string, std::string, std::string>, Template> found;
  std::map<std::tuple<std::string, std::string, std::string>, fs::path> base_paths;
  std::vector<fs::path> files;
  for (fs::recursive_directory_iterator it(template_dir, error), end; !error && it != end;
       it.increment(error)) {
    if (it->is_regular_file(error)) files.push_back(it->path());
  }
  if (error) return fail(template_dir, error.message());
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) {
    const fs::path relative = fs::relative(file, template_dir, error);
    std::vector<std::string> parts;
    for (const fs::path& part : relative) parts.push_back(part.string());
    if (parts.size() != 3) {
      return fail(file, "expected <portal_id or _default>/<language or _default>/<kind>.{subject,txt,html}");
    }
    const std::string extension = file.extension().string();
    const std::string kind_name = file.stem().string();
    TemplateKind kind = v1::TEMPLATE_KIND_UNSPECIFIED;
    if (!v1::TemplateKind_Parse(absl::StrCat("TEMPLATE_KIND_", absl::AsciiStrToUpper(kind_name)),
                                &kind) ||
        kind == v1::TEMPLATE_KIND_UNSPECIFIED || kind_name != absl::AsciiStrToLower(kind_name)) {
      return fail(file, "unknown kind (self_registration, guest_credentials, sponsor_summary, "
                        "password_reset)");
    }
    const auto key = std::make_tuple(parts[0], parts[1], kind_name);
    Template& t = found[key];
    base_paths[key] = file.parent_path() / kind_name;
    t.set_portal_id(parts[0] == kDefaultDirName ? "" : parts[0]);
    t.set_language(parts[1] == kDefaultDirName ? "" : parts[1]);
    t.set_kind(kind);
    std::string content = ReadFile(file);
    if (extension == ".subject") {
      // Editors end files with a newline; a subject is one line.
      absl::string_view subject = content;
      absl::ConsumeSuffix(&subject, "\n");
      absl::ConsumeSuffix(&subject, "\r");
      t.set_subject(std::string(subject));
    } else if (extension == ".txt") {
      t.set_text_body(std::move(content));
    } else if (extension == ".html") {
      t.set_html_body(std::move(content));
    } else {
      return fail(file, "unknown extension (.subject, .txt or .html)");
    }
  }
  for (auto& [key, t] : found) {
    if (absl::Status s = ValidateTemplate(t, "template."); !s.ok()) {
      fs::path file = base_paths[key];
      if (absl::StartsWith(s.message(), "template.subject")) {
        file += ".subject";
      } else if (absl::StartsWith(s.message(), "template.text_body")) {
        file += ".txt";
      } else if (absl::StartsWith(s.message(), "template.html_body")) {
        file += ".html";
      }
      return fail(file, s.message());
    }
    t.set_etag(TemplateEtag(t));
    directory_[KeyOf(t.portal_id(), t.language(), t.kind())] = t;
  }
  return absl::OkStatus();
}

absl::Status TemplateStore::SaveLocked() {
  internal::SavedTemplates saved;
  for (const auto& [key, t] : saved_) *saved.add_templates() = t;
  return WriteProtoFileAtomically(path_, saved);
}

absl::StatusOr<Template> TemplateStore::Put(const Template& t, bool validate_only) {
  if (absl::Status s = ValidateTemplate(t, "template."); !s.ok()) return s;
  Template stored = t;
  stored.clear_update_time();
  stored.set_etag(TemplateEtag(stored));
  if (validate_only) return stored;
  stored.mutable_update_time()->set_seconds(absl::ToUnixSeconds(clock_->Now()));
  absl::MutexLock lock(&mu_);
  const Key key = KeyOf(t.portal_id(), t.language(), t.kind());
  absl::optional<Template> previous;
  if (auto it = saved_.find(key); it != saved_.end()) previous = it->second;
  saved_[key] = stored;
  if (absl::Status s = SaveLocked(); !s.ok()) {
    if (previous.has_value()) {
      saved_[key] = *previous;
    } else {
      saved_.erase(key);
    }
    return s;
  }
  MR_LOG(kInfo, kLogPsn) << "template saved: portal \"" << t.portal_id() << "\" language \""
                         << t.language() << "\" " << KindShortName(t.kind()) << " etag "
                         << stored.etag();
  return stored;
}

absl::StatusOr<Template> TemplateStore::Get(absl::string_view portal_id,
                                            absl::string_view language,
                                            TemplateKind kind) const {
  absl::MutexLock lock(&mu_);
  auto it = saved_.find(KeyOf(portal_id, language, kind));
  if (it == saved_.end()) {
    return absl::NotFoundError(absl::StrCat("no template saved for portal_id \"", portal_id,
                                            "\", language \"", language, "\", kind ",
                                            KindShortName(kind)));
  }
  return it->second;
}

Template TemplateStore::Resolve(absl::string_view portal_id, absl::string_view language,
                                TemplateKind kind) const {
  std::vector<Key> chain = {KeyOf(portal_id, language, kind)};
  if (!language.empty()) chain.push_back(KeyOf(portal_id, "", kind));
  if (!portal_id.empty()) {
    if (!language.empty()) chain.push_back(KeyOf("", language, kind));
    chain.push_back(KeyOf("", "", kind));
  }
  {
    absl::MutexLock lock(&mu_);
    for (const Key& key : chain) {
      if (auto it = saved_.find(key); it != saved_.end()) return it->second;
      if (auto it = directory_.find(key); it != directory_.end()) return it->second;
    }
  }
  return BuiltinTemplate(kind, language);
}

absl::StatusOr<v1::ListTemplatesResponse> TemplateStore::List(
    const v1::ListTemplatesRequest& request) const {
  int page_size = request.page().page_size();
  if (page_size < 0) return FieldError("page.page_size", "must not be negative");
  if (page_size == 0) page_size = kDefaultPageSize;
  page_size = std::min(page_size, kMaxPageSize);
  absl::StatusOr<size_t> offset = ParsePageToken(request.page().page_token(), request.portal_id());
  if (!offset.ok()) return offset.status();
  std::vector<const Template*> matching;
  v1::ListTemplatesResponse response;
  absl::MutexLock lock(&mu_);
  for (const auto& [key, t] : saved_) {
    if (request.portal_id().empty() || t.portal_id() == request.portal_id()) {
      matching.push_back(&t);
    }
  }
  for (size_t i = *offset; i < matching.size() && response.templates_size() < page_size; ++i) {
    *response.add_templates() = *matching[i];
  }
  const size_t next = *offset + response.templates_size();
  if (next < matching.size()) {
    response.mutable_page()->set_next_page_token(PageToken(next, request.portal_id()));
  }
  response.mutable_page()->set_total_size(static_cast<int64_t>(matching.size()));
  return response;
}

absl::Status TemplateStore::Delete(absl::string_view portal_id, absl::string_view language,
                                   TemplateKind kind) {
  absl::MutexLock lock(&mu_);
  const Key key = KeyOf(portal_id, language, kind);
  auto it = saved_.find(key);
  if (it == saved_.end()) {
    return absl::NotFoundError(absl::StrCat("no template saved for portal_id \"", portal_id,
                                            "\", language \"", language, "\", kind ",
                                            KindShortName(kind)));
  }
  const Template previous = it->second;
  saved_.erase(it);
  if (absl::Status s = SaveLocked(); !s.ok()) {
    saved_[key] = previous;
    return s;
  }
  MR_LOG(kInfo, kLogPsn) << "template deleted: portal \"" << portal_id << "\" language \""
                         << language << "\" " << KindShortName(kind);
  return absl::OkStatus();
}

}  // namespace mailroom::psn
