#include "pan/broker/mailbox_pool.h"

#include <functional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/proto_time.h"
#include "common/mail/email_address.h"

namespace mailroom::broker {
namespace {

namespace v1 = ::mailroom::broker::v1;
namespace cv1 = ::mailroom::common::v1;

constexpr char kDefaultCredential[] = "default";

// The form addresses are compared in: AddressForSmtp's (ASCII, the domain in lower case),
// the local part in lower case too (Exchange's addresses are case-insensitive); empty if
// `address` is not one.
std::string AddressKey(absl::string_view address) {
  absl::StatusOr<std::string> smtp = AddressForSmtp(address, "address");
  return smtp.ok() ? absl::AsciiStrToLower(*smtp) : std::string();
}

// A send_as entry's comparable form ("@domain" or an address key); empty if it is neither.
std::string SendAsKey(absl::string_view entry) {
  if (absl::StartsWith(entry, "@")) {
    absl::StatusOr<std::string> domain = DomainForSmtp(entry.substr(1), "send_as");
    return domain.ok() ? absl::StrCat("@", absl::AsciiStrToLower(*domain)) : std::string();
  }
  return AddressKey(entry);
}

bool IsPoolTransport(v1::MailTransport transport) {
  return transport == v1::MAIL_TRANSPORT_UNSPECIFIED || transport == v1::MAIL_TRANSPORT_SMTP ||
         transport == v1::MAIL_TRANSPORT_GRAPH ||
         transport == v1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK;
}

// Whether mail of a mailbox with `transport` may go out through Graph (then graph_endpoint and
// OAuth are needed).
bool MayUseGraph(v1::MailTransport transport) {
  return transport == v1::MAIL_TRANSPORT_GRAPH ||
         transport == v1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK;
}

std::string Quoted(absl::string_view text) { return absl::StrCat("\"", text, "\""); }

// Limits of a pool mailbox: a zero (unset) field is the broker's; otherwise within range.
void CheckLimits(const v1::SendLimits& limits,
                 const std::function<void(absl::string_view, absl::string_view)>& bad) {
  auto range = [&](absl::string_view field, int64_t value, int64_t max) {
    if (value < 0 || value > max) {
      bad(field, absl::StrCat("must be 0 (the broker's limit) to ", max));
    }
  };
  range("messages_per_minute", limits.messages_per_minute(), 10000);
  range("recipients_per_day", limits.recipients_per_day(), 1000000);
  range("max_connections", limits.max_connections(), 100);
  range("max_recipients_per_message", limits.max_recipients_per_message(), 1000);
  auto lease = [&](absl::string_view field, bool has, const google::protobuf::Duration& value,
                   absl::Duration min) {
    if (!has) return;
    const absl::Duration d = FromProto(value);
    if (d != absl::ZeroDuration() && (d < min || d > absl::Minutes(10))) {
      bad(field, absl::StrCat("must be unset (the broker's) or ", absl::FormatDuration(min),
                              " to 10m"));
    }
  };
  lease("permit_lease", limits.has_permit_lease(), limits.permit_lease(), absl::Seconds(10));
  lease("connection_idle_lease", limits.has_connection_idle_lease(),
        limits.connection_idle_lease(), absl::Seconds(5));
}

void CheckSendAs(const google::protobuf::RepeatedPtrField<std::string>& send_as,
                 const std::string& field,
                 const std::function<void(absl::string_view, absl::string_view)>& bad) {
  if (send_as.size() > kMaxSendAsEntries) {
    bad(field, absl::StrCat("has more than ", kMaxSendAsEntries, " entries"));
    return;
  }
  for (int i = 0; i < send_as.size(); ++i) {
    if (SendAsKey(send_as[i]).empty()) {
      bad(absl::StrCat(field, "[", i, "]"),
          absl::StrCat(Quoted(send_as[i]), " is not an address or @domain"));
    }
  }
}

std::vector<std::string> SendAsKeys(const google::protobuf::RepeatedPtrField<std::string>& send_as) {
  std::vector<std::string> keys;
  for (const std::string& entry : send_as) keys.push_back(SendAsKey(entry));
  return keys;
}

}  // namespace

v1::SmtpSettings SettingsOfMailbox(const v1::SmtpSettings& resolved, const PoolMember& member) {
  // The default mailbox's are the settings themselves, as saved (what a test's fingerprint is
  // of).
  if (member.is_default) return resolved;
  v1::SmtpSettings settings = resolved;
  settings.set_username(member.address);
  settings.set_transport(member.transport);
  return settings;
}

bool PoolUsesGraph(const v1::SmtpSettings& settings) {
  if (MayUseGraph(settings.transport())) return true;
  for (const v1::PoolMailbox& mailbox : settings.mailboxes()) {
    if (MayUseGraph(mailbox.transport())) return true;
  }
  return false;
}

absl::Status ValidateMailboxPool(const v1::SmtpSettings& s, const std::string& prefix) {
  std::vector<std::string> errors;
  auto bad = [&](absl::string_view field, absl::string_view problem) {
    errors.push_back(absl::StrCat(prefix, ".", field, ": ", problem));
  };
  // Every known mailbox by its key, with the field that named it first.
  std::map<std::string, std::string> known;
  if (const std::string key = AddressKey(s.username()); !key.empty()) known[key] = "username";
  if (s.mailboxes_size() > kMaxPoolMailboxes) {
    bad("mailboxes", absl::StrCat("has more than ", kMaxPoolMailboxes, " mailboxes"));
  }
  const bool authenticates = !s.has_use_authentication() || s.use_authentication();
  for (int i = 0; i < s.mailboxes_size() && i < kMaxPoolMailboxes; ++i) {
    const v1::PoolMailbox& mailbox = s.mailboxes(i);
    const std::string field = absl::StrCat("mailboxes[", i, "]");
    auto bad_field = [&](absl::string_view name, absl::string_view problem) {
      bad(absl::StrCat(field, ".", name), problem);
    };
    const std::string key = AddressKey(mailbox.address());
    if (mailbox.address().empty()) {
      bad_field("address", "is required: the full address of the sending mailbox");
    } else if (key.empty()) {
      bad_field("address", absl::StrCat(Quoted(mailbox.address()),
                                        " is not a full email address such as "
                                        "alerts@contoso.com"));
    } else if (auto [it, inserted] = known.emplace(key, field + ".address"); !inserted) {
      bad_field("address", absl::StrCat(Quoted(mailbox.address()), " is already ",
                                        it->second == "username" ? "the default mailbox (username)"
                                                                 : it->second));
    }
    if (!mailbox.credential().empty() && mailbox.credential() != kDefaultCredential) {
      bad_field("credential",
                absl::StrCat(Quoted(mailbox.credential()),
                             " names no credential: the broker holds one (the settings' "
                             "client_secret or certificate); leave it empty or \"default\""));
    }
    if (!IsPoolTransport(mailbox.transport())) {
      bad_field("transport", "must be SMTP, GRAPH or SMTP_WITH_GRAPH_FALLBACK");
    } else if (MayUseGraph(mailbox.transport()) && !authenticates) {
      bad_field("transport",
                absl::StrCat(v1::MailTransport_Name(mailbox.transport()).substr(15),
                             " needs use_authentication: Graph accepts only OAuth tokens"));
    }
    CheckLimits(mailbox.limits(), [&](absl::string_view name, absl::string_view problem) {
      bad_field(absl::StrCat("limits.", name), problem);
    });
    CheckSendAs(mailbox.send_as(), field + ".send_as", bad);
  }
  CheckSendAs(s.send_as(), "send_as", bad);
  std::map<int, int> routed;  // purpose → route index
  for (int i = 0; i < s.routes_size(); ++i) {
    const v1::MailRoute& route = s.routes(i);
    const std::string field = absl::StrCat("routes[", i, "]");
    if (route.purpose() == cv1::MAIL_PURPOSE_UNSPECIFIED ||
        !cv1::MailPurpose_IsValid(route.purpose())) {
      bad(field + ".purpose", "must be ALARMS, GUEST_CREDENTIALS, SPONSOR_MAIL, REMINDERS or "
                              "TEST_MAIL");
    } else if (auto [it, inserted] = routed.emplace(route.purpose(), i); !inserted) {
      bad(field + ".purpose", absl::StrCat(cv1::MailPurpose_Name(route.purpose()),
                                           " is routed already by routes[", it->second, "]"));
    }
    if (route.mailboxes().empty()) {
      bad(field + ".mailboxes", "name at least one mailbox");
    } else if (route.mailboxes_size() > kMaxRouteMailboxes) {
      bad(field + ".mailboxes", absl::StrCat("name at most ", kMaxRouteMailboxes, " mailboxes"));
    }
    std::set<std::string> seen;
    for (int j = 0; j < route.mailboxes_size(); ++j) {
      const std::string name = absl::StrCat(field, ".mailboxes[", j, "]");
      const std::string key = AddressKey(route.mailboxes(j));
      if (key.empty() || known.count(key) == 0) {
        bad(name, absl::StrCat(Quoted(route.mailboxes(j)),
                               " is neither the default mailbox (username) nor one of "
                               "mailboxes"));
      } else if (!seen.insert(key).second) {
        bad(name, absl::StrCat(Quoted(route.mailboxes(j)), " is named twice in this route"));
      }
    }
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
}

MailboxPool::MailboxPool(const v1::SmtpSettings& settings, const SendLimitValues& defaults) {
  PoolMember& first = members_.emplace_back();
  first.address = settings.username();
  first.transport = settings.transport() == v1::MAIL_TRANSPORT_UNSPECIFIED
                        ? v1::MAIL_TRANSPORT_SMTP
                        : settings.transport();
  first.limits = defaults;
  first.is_default = true;
  first.send_as = SendAsKeys(settings.send_as());
  first.checks_send_as = !first.send_as.empty();
  for (const v1::PoolMailbox& mailbox : settings.mailboxes()) {
    PoolMember& member = members_.emplace_back();
    member.address = mailbox.address();
    member.transport = mailbox.transport() == v1::MAIL_TRANSPORT_UNSPECIFIED
                           ? v1::MAIL_TRANSPORT_SMTP
                           : mailbox.transport();
    // Zero fields are the broker's limits, not Exchange's defaults.
    member.limits = ResolveSendLimits(mailbox.limits(), defaults);
    member.send_as = SendAsKeys(mailbox.send_as());
  }
  for (const v1::MailRoute& route : settings.routes()) {
    std::vector<size_t>& indexes = routes_[route.purpose()];
    for (const std::string& name : route.mailboxes()) {
      const PoolMember* member = Find(name);
      if (member != nullptr) indexes.push_back(member - members_.data());
    }
  }
}

const PoolMember* MailboxPool::Find(absl::string_view address) const {
  const std::string key = AddressKey(address);
  if (key.empty()) return nullptr;
  for (const PoolMember& member : members_) {
    if (AddressKey(member.address) == key) return &member;
  }
  return nullptr;
}

absl::StatusOr<const PoolMember*> MailboxPool::Resolve(absl::string_view address,
                                                       absl::string_view field) const {
  if (address.empty()) return &default_mailbox();
  if (const PoolMember* member = Find(address); member != nullptr) return member;
  return absl::NotFoundError(absl::StrCat(field, ": ", Quoted(address),
                                          " is not a mailbox of the pool (the default mailbox ",
                                          default_mailbox().address, " or one of the ",
                                          members_.size() - 1, " pool mailboxes)"));
}

std::vector<const PoolMember*> MailboxPool::Route(MailPurpose purpose) const {
  std::vector<const PoolMember*> out;
  auto it = routes_.find(purpose);
  if (it == routes_.end() || it->second.empty()) {
    out.push_back(&default_mailbox());
    return out;
  }
  for (size_t index : it->second) out.push_back(&members_[index]);
  return out;
}

bool MailboxPool::IsRouted(MailPurpose purpose) const {
  auto it = routes_.find(purpose);
  return it != routes_.end() && !it->second.empty();
}

bool MailboxPool::CanSendAs(const PoolMember& mailbox, absl::string_view from) {
  const std::string key = AddressKey(from);
  if (key.empty()) return false;
  if (!mailbox.checks_send_as || key == AddressKey(mailbox.address)) return true;
  const std::string domain = key.substr(key.rfind('@'));
  for (const std::string& entry : mailbox.send_as) {
    if (entry == key || entry == domain) return true;
  }
  return false;
}

absl::StatusOr<const PoolMember*> MailboxPool::CheckFrom(MailPurpose purpose,
                                                         absl::string_view from,
                                                         absl::string_view field) const {
  if (absl::Status valid = ValidateEmailAddress(from, field); !valid.ok()) return valid;
  const std::vector<const PoolMember*> route = Route(purpose);
  std::vector<std::string> refusing;
  for (const PoolMember* member : route) {
    if (!CanSendAs(*member, from)) refusing.push_back(member->address);
  }
  if (refusing.empty()) return route.front();
  // Any mailbox of the route may carry the mail (the next one while those before it are
  // paused), so each must be allowed to send as its From, or Exchange refuses it (550 5.7.60).
  return absl::InvalidArgumentError(absl::StrCat(
      field, ": ", Quoted(from), " is not an address that ",
      refusing.size() == route.size() ? (route.size() == 1 ? "the mailbox" : "the mailboxes")
                                      : "every mailbox",
      " carrying ", PurposeName(purpose), " may send as (",
      refusing.size() == route.size() ? "" : "not: ", absl::StrJoin(refusing, ", "),
      "; any mailbox of the route may carry it): use another From, or add it (or its @domain) "
      "to the send_as of each of them in the broker's settings and grant them Send As on it in "
      "Exchange"));
}

std::map<std::string, SendLimitValues> MailboxPool::Limits() const {
  std::map<std::string, SendLimitValues> limits;
  for (const PoolMember& member : members_) limits[member.address] = member.limits;
  return limits;
}

}  // namespace mailroom::broker
