// mailroomctl `template` commands: the PSNs' notification templates. Writes go to every PSN
// unless psn=N (so that every PSN sends the same mail); reads go to psn=N, default 1.
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "cli/proto_words.h"
#include "cli/psn_common.h"
#include "cli/role_commands.h"
#include "common/base/text_config.h"

namespace mailroom::cli {
namespace {

namespace pv1 = ::mailroom::psn::v1;

constexpr char kUsage[] = R"(usage (writes go to every PSN unless psn=N; reads to psn=N, default 1):
  template put (file=TEMPLATE.textproto | kind=K subject=TEXT [text_file=F]
               [html_file=F] [time_zone=TZ]) [portal=ID] [language=TAG] [validate_only]
  template get kind=K [portal=ID] [language=TAG] [resolve]
                       resolve: the template sending would use (after fallback)
  template list [portal=ID]
  template delete kind=K [portal=ID] [language=TAG]
K: self_registration, guest_credentials, sponsor_summary, password_reset. Variables:
{{username}} {{password}} {{first_name}} {{last_name}} {{email}} {{valid_from}}
{{valid_until}} {{portal}}, plus {{sponsor}} {{sponsor_email}} for guest_credentials and
password_reset; a summary has {{sponsor}} {{sponsor_email}} {{portal}} {{guest_count}}
{{guests}}. An unknown variable is refused when the template is saved.
)";

void PrintTemplate(const pv1::Template& t, bool body) {
  std::cout << "portal \"" << t.portal_id() << "\"  language \"" << t.language() << "\"  "
            << absl::AsciiStrToLower(
                   WithoutPrefix(pv1::TemplateKind_Name(t.kind()), "TEMPLATE_KIND_"))
            << "  etag " << (t.etag().empty() ? "(built-in)" : t.etag());
  if (t.has_update_time()) std::cout << "  saved " << PsnTime(t.update_time());
  std::cout << "\n  subject: " << t.subject() << "\n";
  if (!t.time_zone().empty()) std::cout << "  time zone: " << t.time_zone() << "\n";
  if (!body) return;
  if (!t.text_body().empty()) std::cout << "--- text ---\n" << t.text_body() << "\n";
  if (!t.html_body().empty()) std::cout << "--- html ---\n" << t.html_body() << "\n";
}

// The template of `template put`: file=, then the options over it.
absl::Status TemplateFromArgs(const Arguments& args, pv1::Template* t) {
  if (args.Has("file")) MR_RETURN_IF_ERROR(LoadTextConfigFile(args.Get("file"), t));
  if (args.Has("kind")) {
    MR_ASSIGN_OR_RETURN(const pv1::TemplateKind kind, ParseTemplateKind(args.Get("kind")));
    t->set_kind(kind);
  }
  if (args.Has("portal")) t->set_portal_id(args.Get("portal"));
  if (args.Has("language")) t->set_language(args.Get("language"));
  if (args.Has("subject")) t->set_subject(args.Get("subject"));
  if (args.Has("time_zone")) t->set_time_zone(args.Get("time_zone"));
  if (args.Has("text_file")) {
    MR_ASSIGN_OR_RETURN(*t->mutable_text_body(), ReadText(args.Get("text_file")));
  }
  if (args.Has("html_file")) {
    MR_ASSIGN_OR_RETURN(*t->mutable_html_body(), ReadText(args.Get("html_file")));
  }
  return absl::OkStatus();
}

// kind= portal= language=: which template get and delete mean.
template <typename Request>
absl::Status KeyFromArgs(const Arguments& args, Request* request) {
  MR_ASSIGN_OR_RETURN(const pv1::TemplateKind kind, ParseTemplateKind(args.Get("kind")));
  request->set_kind(kind);
  request->set_portal_id(args.Get("portal"));
  request->set_language(args.Get("language"));
  return absl::OkStatus();
}

int Put(const Admin& admin, const Arguments& args) {
  absl::StatusOr<std::vector<Target>> targets = ChoosePsns(admin, args, true);
  if (!targets.ok()) return Fail(targets.status());
  pv1::PutTemplateRequest request;
  if (absl::Status s = TemplateFromArgs(args, request.mutable_template_()); !s.ok()) {
    return Fail(s);
  }
  request.set_validate_only(args.Has("validate_only"));
  return ForEachPsn<pv1::PutTemplateResponse>(
      *targets,
      [&](const Target& target) {
        return Call(admin, target, &PsnStub::PutTemplate, request);
      },
      [&request](const Target& target, const pv1::PutTemplateResponse& response) {
        std::cout << target.name << " (" << target.address
                  << "): " << (request.validate_only() ? "valid" : "saved") << ", etag "
                  << response.template_().etag() << "\n";
      });
}

int Get(const Admin& admin, const Arguments& args) {
  absl::StatusOr<std::vector<Target>> targets = ChoosePsns(admin, args, false);
  if (!targets.ok()) return Fail(targets.status());
  pv1::GetTemplateRequest request;
  if (absl::Status s = KeyFromArgs(args, &request); !s.ok()) return Fail(s);
  request.set_resolve(args.Has("resolve"));
  return Report(Call(admin, (*targets)[0], &PsnStub::GetTemplate, request),
                [](const pv1::GetTemplateResponse& response) {
                  PrintTemplate(response.template_(), true);
                });
}

int List(const Admin& admin, const Arguments& args) {
  absl::StatusOr<std::vector<Target>> targets = ChoosePsns(admin, args, false);
  if (!targets.ok()) return Fail(targets.status());
  pv1::ListTemplatesRequest request;
  request.set_portal_id(args.Get("portal"));
  absl::StatusOr<pv1::ListTemplatesResponse> all =
      CallAllPages(admin, (*targets)[0], &PsnStub::ListTemplates, request);
  if (all.ok()) all->clear_page();  // the JSON has always been the templates alone
  const Target& target = (*targets)[0];
  return Report(all, [&target](const pv1::ListTemplatesResponse& response) {
    if (response.templates().empty()) {
      std::cout << target.name << ": no saved templates (the built-in ones are used)\n";
    }
    for (const pv1::Template& t : response.templates()) PrintTemplate(t, false);
  });
}

int Delete(const Admin& admin, const Arguments& args) {
  absl::StatusOr<std::vector<Target>> targets = ChoosePsns(admin, args, true);
  if (!targets.ok()) return Fail(targets.status());
  pv1::DeleteTemplateRequest request;
  if (absl::Status s = KeyFromArgs(args, &request); !s.ok()) return Fail(s);
  return ForEachPsn<pv1::DeleteTemplateResponse>(
      *targets,
      [&](const Target& target) {
        return Call(admin, target, &PsnStub::DeleteTemplate, request);
      },
      [](const Target& target, const pv1::DeleteTemplateResponse&) {
        std::cout << target.name << " (" << target.address << "): deleted\n";
      },
      PsnJson::kFailureCount);
}

}  // namespace

const CommandGroup& TemplateCommands() {
  static const CommandGroup* const group = new CommandGroup{
      {"template"},
      kUsage,
      {
          {"template put",
           {{"psn", "file", "kind", "subject", "text_file", "html_file", "time_zone", "portal",
             "language"},
            {"validate_only"}},
           Put},
          {"template get", {{"psn", "kind", "portal", "language"}, {"resolve"}}, Get},
          {"template list", {{"psn", "portal"}}, List},
          {"template delete", {{"psn", "kind", "portal", "language"}}, Delete},
      }};
  return *group;
}

}  // namespace mailroom::cli
