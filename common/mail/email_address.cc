#include "common/mail/email_address.h"

#include <arpa/inet.h>
#include <idn2.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace mailroom {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view detail) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", detail));
}

bool IsAscii(absl::string_view s) {
  for (const char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

// RFC 5322 atext.
bool IsAtext(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         (c != '\0' && std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr);
}

// What every address or domain must be before it is parsed: present, free of CR, LF and NUL
// (which would let it inject header lines or SMTP commands), and well-formed UTF-8. `what`
// names it in the message for an empty one.
absl::Status CheckRawText(absl::string_view text, absl::string_view what,
                          absl::string_view field) {
  if (text.empty()) return Invalid(field, absl::StrCat("empty ", what));
  if (text.find_first_of("\r\n") != absl::string_view::npos) {
    return Invalid(field, "contains CR or LF");
  }
  if (text.find('\0') != absl::string_view::npos) return Invalid(field, "contains NUL");
  if (const size_t bad = FindInvalidUtf8(text); bad != absl::string_view::npos) {
    return Invalid(field, absl::StrCat("is not valid UTF-8 (byte ", bad, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckCommonProblems(absl::string_view address, absl::string_view field) {
  if (absl::Status status = CheckRawText(address, "address", field); !status.ok()) {
    return status;
  }
  if (absl::ascii_isspace(static_cast<unsigned char>(address.front())) ||
      absl::ascii_isspace(static_cast<unsigned char>(address.back()))) {
    return Invalid(field,
                   absl::StrCat(QuoteForError(address), " has leading or trailing whitespace"));
  }
  if (address.front() == '<' || address.back() == '>') {
    return Invalid(field, absl::StrCat(QuoteForError(address),
                                       ": give the bare address, without angle brackets (the "
                                       "display name is a separate field)"));
  }
  return absl::OkStatus();
}

absl::Status CheckDotAtom(absl::string_view text, absl::string_view what, absl::string_view field) {
  for (const char c : text) {
    if (c == '.' || IsAtext(c)) continue;
    if (c == ' ' || c == '\t') {
      return Invalid(field, absl::StrCat(what, " ", QuoteForError(text),
                                         " contains whitespace (allowed only when quoted)"));
    }
    return Invalid(field, absl::StrCat("invalid character ", QuoteForError({&c, 1}), " in ", what,
                                       " ", QuoteForError(text)));
  }
  if (text.front() == '.' || text.back() == '.' || absl::StrContains(text, "..")) {
    return Invalid(field, absl::StrCat(what, " ", QuoteForError(text),
                                       " has a leading, trailing or doubled dot"));
  }
  return absl::OkStatus();
}

// `quoted` starts and ends with DQUOTE. RFC 5321 Quoted-string: qtextSMTP is printable ASCII
// but '"' and '\'; quoted-pairSMTP is '\' and any printable ASCII or space. A space, which
// RFC 5321 allows there, is refused: the SMTP submission path (libcurl's RCPT TO, Exchange
// Online) refuses such an address, and a message accepted now would only fail at send.
absl::Status CheckQuotedLocalPart(absl::string_view quoted, absl::string_view field) {
  const absl::string_view inner = quoted.substr(1, quoted.size() - 2);
  if (inner.empty()) return Invalid(field, "empty local part (\"\")");
  if (inner.find(' ') != absl::string_view::npos) {
    return Invalid(field, absl::StrCat("quoted local part ", QuoteForError(quoted),
                                       " contains a space, which Exchange Online does not "
                                       "accept in an address"));
  }
  for (size_t i = 0; i < inner.size(); ++i) {
    const char c = inner[i];
    if (c == '\\') {
      ++i;  // the closing-quote scan guarantees a character follows
      if (inner[i] < 0x20 || inner[i] > 0x7e) {
        return Invalid(field, absl::StrCat("invalid escaped character in quoted local part ",
                                           QuoteForError(quoted)));
      }
    } else if (c < 0x20 || c > 0x7e || c == '"') {
      return Invalid(
          field, absl::StrCat("invalid character in quoted local part ", QuoteForError(quoted)));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckLocalPart(absl::string_view local, absl::string_view field) {
  if (local.empty()) return Invalid(field, "empty local part (nothing before '@')");
  if (!IsAscii(local)) {
    return Invalid(field,
                   absl::StrCat("local part ", QuoteForError(local),
                                " is not ASCII: internationalized local parts need SMTPUTF8, which "
                                "mailroom does not use for submission to Exchange Online"));
  }
  if (local.size() > kMaxLocalPartOctets) {
    return Invalid(field, absl::StrCat("local part is ", local.size(), " octets, more than ",
                                       kMaxLocalPartOctets));
  }
  if (local.front() == '"') return CheckQuotedLocalPart(local, field);
  return CheckDotAtom(local, "local part", field);
}

// One ASCII label: letters, digits and hyphens (RFC 5321 sub-domain), 1..63 octets.
absl::Status CheckLdhLabel(absl::string_view label, absl::string_view field) {
  if (label.empty()) return Invalid(field, "empty domain label");
  if (label.size() > kMaxDomainLabelOctets) {
    return Invalid(field, absl::StrCat("domain label ", QuoteForError(label), " is ", label.size(),
                                       " octets, more than ", kMaxDomainLabelOctets));
  }
  for (const char c : label) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') {
      return Invalid(field, absl::StrCat("invalid domain label ", QuoteForError(label),
                                         ": only letters, digits and '-' are allowed"));
    }
  }
  if (label.front() == '-' || label.back() == '-') {
    return Invalid(field, absl::StrCat("invalid domain label ", QuoteForError(label),
                                       ": must not start or end with '-'"));
  }
  return absl::OkStatus();
}

// A label in UTF-8, or an A-label to be verified: libidn2 maps it (UTS #46 non-transitional,
// NFC), checks it against IDNA2008 and returns the A-label. The result may hold several
// labels when the input contained a full stop that maps to '.', e.g. U+3002.
absl::StatusOr<std::string> ToALabels(absl::string_view label, absl::string_view field) {
  const std::string input(label);
  char* output = nullptr;
  const int rc = idn2_to_ascii_8z(input.c_str(), &output, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
  if (rc != IDN2_OK) {
    std::free(output);
    return Invalid(field, absl::StrCat("invalid domain label ", QuoteForError(label), ": ",
                                       idn2_strerror(rc)));
  }
  std::string result(output);
  std::free(output);
  return result;
}

absl::StatusOr<std::string> CheckAddressLiteral(absl::string_view literal,
                                                absl::string_view field) {
  if (literal.size() < 2 || literal.back() != ']') {
    return Invalid(field, absl::StrCat("invalid address literal ", QuoteForError(literal)));
  }
  const absl::string_view inner = literal.substr(1, literal.size() - 2);
  unsigned char buffer[16];
  if (absl::StartsWithIgnoreCase(inner, "IPv6:")) {
    const std::string ip(inner.substr(5));
    if (inet_pton(AF_INET6, ip.c_str(), buffer) == 1) return absl::StrCat("[IPv6:", ip, "]");
  } else {
    const std::string ip(inner);
    if (inet_pton(AF_INET, ip.c_str(), buffer) == 1) return std::string(literal);
  }
  return Invalid(field, absl::StrCat("invalid address literal ", QuoteForError(literal),
                                     ": only [IPv4] and [IPv6:...] literals are accepted"));
}

absl::StatusOr<std::string> ConvertDomain(absl::string_view domain, absl::string_view field,
                                          bool allow_literal) {
  if (domain.empty()) return Invalid(field, "empty domain (nothing after '@')");
  if (domain.front() == '[') {
    if (!allow_literal) {
      return Invalid(field, absl::StrCat("an address literal (", QuoteForError(domain),
                                         ") is not accepted here"));
    }
    return CheckAddressLiteral(domain, field);
  }
  if (domain.front() == '.') {
    return Invalid(field, absl::StrCat("domain ", QuoteForError(domain), " starts with a dot"));
  }
  if (domain.back() == '.') {
    return Invalid(field, absl::StrCat("domain ", QuoteForError(domain), " ends with a dot"));
  }
  std::vector<std::string> labels;
  for (absl::string_view label : absl::StrSplit(domain, '.')) {
    if (label.empty()) {
      return Invalid(
          field, absl::StrCat("domain ", QuoteForError(domain), " has an empty label (\"..\")"));
    }
    if (IsAscii(label) && !absl::StartsWithIgnoreCase(label, "xn--")) {
      if (absl::Status status = CheckLdhLabel(label, field); !status.ok()) return status;
      labels.push_back(absl::AsciiStrToLower(label));
      continue;
    }
    absl::StatusOr<std::string> converted = ToALabels(label, field);
    if (!converted.ok()) return converted.status();
    for (absl::string_view part : absl::StrSplit(*converted, '.')) {
      if (part.empty()) {
        return Invalid(
            field, absl::StrCat("domain label ", QuoteForError(label), " is empty after mapping"));
      }
      if (absl::Status status = CheckLdhLabel(part, field); !status.ok()) return status;
      labels.push_back(absl::AsciiStrToLower(part));
    }
  }
  std::string result = absl::StrJoin(labels, ".");
  if (labels.size() < 2) {
    return Invalid(field, absl::StrCat("domain ", QuoteForError(domain),
                                       " has no dot: a mail domain needs at least two labels"));
  }
  if (std::all_of(labels.back().begin(), labels.back().end(),
                  [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); })) {
    return Invalid(field, absl::StrCat("domain ", QuoteForError(domain),
                                       " ends in an all-digit label; an IP address must be "
                                       "written as an address literal, e.g. [192.0.2.1]"));
  }
  if (result.size() > kMaxDomainOctets) {
    return Invalid(
        field, absl::StrCat("domain is ", result.size(), " octets, more than ", kMaxDomainOctets));
  }
  return result;
}

}  // namespace

absl::StatusOr<std::string> AddressForSmtp(absl::string_view address, absl::string_view field) {
  if (absl::Status status = CheckCommonProblems(address, field); !status.ok()) return status;

  absl::string_view local;
  absl::string_view domain;
  if (address.front() == '"') {
    size_t close = absl::string_view::npos;
    for (size_t i = 1; i < address.size(); ++i) {
      if (address[i] == '\\' && i + 1 < address.size()) {
        ++i;
      } else if (address[i] == '"') {
        close = i;
        break;
      }
    }
    if (close == absl::string_view::npos) {
      return Invalid(
          field, absl::StrCat(QuoteForError(address), " has an unterminated quoted local part"));
    }
    local = address.substr(0, close + 1);
    const absl::string_view rest = address.substr(close + 1);
    if (rest.empty() || rest.front() != '@') {
      return Invalid(field, absl::StrCat(QuoteForError(address),
                                         rest.empty() ? " has no '@'"
                                                      : " has text between the quoted local "
                                                        "part and '@'"));
    }
    domain = rest.substr(1);
  } else {
    const size_t at = address.find('@');
    if (at == absl::string_view::npos) {
      return Invalid(field, absl::StrCat(QuoteForError(address), " has no '@'"));
    }
    local = address.substr(0, at);
    domain = address.substr(at + 1);
  }
  if (domain.find('@') != absl::string_view::npos) {
    return Invalid(field, absl::StrCat(QuoteForError(address), " has more than one '@'"));
  }
  if (absl::Status status = CheckLocalPart(local, field); !status.ok()) return status;
  absl::StatusOr<std::string> ascii_domain = ConvertDomain(domain, field, true);
  if (!ascii_domain.ok()) return ascii_domain.status();

  std::string result = absl::StrCat(local, "@", *ascii_domain);
  if (result.size() > kMaxAddressOctets) {
    return Invalid(field, absl::StrCat("address is ", result.size(), " octets, more than ",
                                       kMaxAddressOctets));
  }
  return result;
}

absl::Status ValidateEmailAddress(absl::string_view address, absl::string_view field) {
  return AddressForSmtp(address, field).status();
}

absl::StatusOr<std::string> DomainForSmtp(absl::string_view domain, absl::string_view field) {
  if (absl::Status status = CheckRawText(domain, "domain", field); !status.ok()) return status;
  return ConvertDomain(domain, field, false);
}

}  // namespace mailroom
