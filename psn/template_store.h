// Provides TemplateStore, one PSN's mail templates per (portal_id, language, kind): the ones
// an admin saved with PutTemplate (kept in the node's data_dir, an atomically replaced
// protobuf file), the defaults an operator ships in PsnConfig.template_dir (validated at
// start; a bad file stops the start, naming the file), and the built-in ones. Resolve()
// implements the documented lookup, first match wins: (portal, language) → (portal, "") →
// ("", language) → ("", ""), where at each key a saved template comes before a template_dir
// one, and then the built-in template. Languages compare case-insensitively. Thread-safe.
#ifndef MAILROOM_PSN_TEMPLATE_STORE_H_
#define MAILROOM_PSN_TEMPLATE_STORE_H_

#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/base/clock.h"
#include "proto/mailroom/psn/v1/psn.pb.h"

namespace mailroom::psn {

using ::mailroom::psn::v1::Template;
using ::mailroom::psn::v1::TemplateKind;

class TemplateStore {
 public:
  // `path` holds the saved templates (created on the first Put); `template_dir` may be
  // empty. `clock` must outlive the store.
  static absl::StatusOr<std::unique_ptr<TemplateStore>> Open(const std::string& path,
                                                             const std::string& template_dir,
                                                             const Clock* clock);

  // Validates (INVALID_ARGUMENT naming "template.<field>"), then, unless `validate_only`,
  // saves durably. Returns the template with its etag (a content hash) and update_time.
  absl::StatusOr<Template> Put(const Template& t, bool validate_only);

  // The saved template for exactly this key; NOT_FOUND if none.
  absl::StatusOr<Template> Get(absl::string_view portal_id, absl::string_view language,
                               TemplateKind kind) const;

  // The template sending would use (always found; see the lookup above).
  Template Resolve(absl::string_view portal_id, absl::string_view language,
                   TemplateKind kind) const;

  // Saved templates, ordered by portal_id, language, kind; only `portal_id`'s when not empty.
  absl::StatusOr<::mailroom::psn::v1::ListTemplatesResponse> List(
      const ::mailroom::psn::v1::ListTemplatesRequest& request) const;

  // Deletes the saved template for the key; NOT_FOUND if none.
  absl::Status Delete(absl::string_view portal_id, absl::string_view language,
                      TemplateKind kind);

  // How many templates template_dir provided.
  size_t directory_template_count() const { return directory_.size(); }

 private:
  using Key = std::tuple<std::string, std::string, int>;  // portal, lowercase language, kind
  static Key KeyOf(absl::string_view portal_id, absl::string_view language, TemplateKind kind);

  TemplateStore(std::string path, const Clock* clock) : path_(std::move(path)), clock_(clock) {}
  absl::Status LoadDirectory(const std::string& template_dir);
  absl::Status SaveLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const Clock* const clock_;
  // Read-only after Open.
  std::map<Key, Template> directory_;
  mutable absl::Mutex mu_;
  std::map<Key, Template> saved_ ABSL_GUARDED_BY(mu_);
};

// The etag of a template: a hash of its content (key fields included, output-only fields
// not), so equal templates on different PSNs have equal etags.
std::string TemplateEtag(Template t);

}  // namespace mailroom::psn

#endif  // MAILROOM_PSN_TEMPLATE_STORE_H_
