// Provides the admin-facing name and fix for every classified failure (the seed's
// troubleshooting table, extended), and the way a Diagnosis travels inside an absl::Status
// so that layers between the failure and the RPC edge need not know about it.
// Stateless and thread-safe.
#ifndef MAILROOM_COMMON_DIAGNOSIS_H_
#define MAILROOM_COMMON_DIAGNOSIS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "proto/mailroom/common/v1/common.pb.h"

namespace mailroom {

using ::mailroom::common::v1::Diagnosis;
using ::mailroom::common::v1::FailureCause;

// A Diagnosis for `cause` with its title, fix and retryability filled in from the table;
// `raw_reply` is kept beside the classification as the server sent it.
Diagnosis MakeDiagnosis(FailureCause cause, absl::string_view raw_reply = "");

// The most of a server's reply a Diagnosis keeps (the MnT accepts 16 KiB in an alarm; a token
// endpoint or SMTP server can send far more).
inline constexpr size_t kMaxRawReplyBytes = 8192;

// Sets `diagnosis`'s raw_reply to `raw`, cut on a character boundary at kMaxRawReplyBytes
// with a note saying how much was left out. A byte that does not begin a well-formed UTF-8
// sequence becomes U+FFFD, so that the Diagnosis (a proto3 message) always serializes and
// parses back.
void SetRawReply(Diagnosis* diagnosis, absl::string_view raw);

// The title of a cause ("Invalid client secret"), e.g. for alarm text.
absl::string_view FailureTitle(FailureCause cause);

// The seed's words for a failure to connect to `host`: for FAILURE_CAUSE_CONNECT_TIMEOUT,
// _CONNECTION_REFUSED and _DNS_RESOLUTION_FAILED the title becomes "Connection to <host>
// failed: <detail>" (e.g. "Connection to smtp.office365.com failed: connect timed out"), as ISE
// shows them. Other causes, and an empty host, are left as they are.
void NameConnectHost(absl::string_view host, Diagnosis* diagnosis);

// The fix of FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN naming the settings field that holds the
// trust store to change: "authority_trust_store" (the token endpoint), "smtp_trust_store" (the
// SMTP server) or "proxy.trust_store" (an https:// proxy).
std::string UntrustedChainFix(absl::string_view trust_store_field);

// Attaches `diagnosis` to `status` (which must not be OK).
absl::Status WithDiagnosis(absl::Status status, const Diagnosis& diagnosis);
// The diagnosis attached to `status`, if any.
absl::optional<Diagnosis> DiagnosisOf(const absl::Status& status);

// An error status carrying a diagnosis: the message is "<title>: <detail>", the code
// UNAVAILABLE when retrying may help and FAILED_PRECONDITION when configuration must change.
absl::Status DiagnosedError(const Diagnosis& diagnosis, absl::string_view detail = "");

// One human-readable paragraph: title, fix, codes and the raw reply.
std::string FormatDiagnosis(const Diagnosis& diagnosis);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_DIAGNOSIS_H_
