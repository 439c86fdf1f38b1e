// BuildMimeMessage's output is parsed back with an independent reader
// (tests/testing/mime_parse.h) and compared with what went in: headers, RFC 2047 words,
// folding, multipart structure and body encodings. Then the refusals: header injection,
// malformed UTF-8, bad addresses, missing recipients, the size limit. Last, when python3 is
// installed, Python's own email parser reads a message back as a second opinion.
#include "common/mail/mime_message.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/mime_parse.h"

namespace mailroom {
namespace {

namespace mt = ::mailroom::testing;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr absl::string_view kChineseSubject = "訪客帳號即將到期 — 王小明";

MailContent BaseContent() {
  MailContent content;
  content.from = {"notifications@example.com", "ISE Guest Portal"};
  content.to = {{"guest@example.com", "王小明"}};
  content.subject = "Your guest account";
  content.text_body = "Hello,\nyour account expires tomorrow.\n";
  content.html_body = "<p>Hello,</p>\n<p>your account expires tomorrow.</p>\n";
  content.message_id = "n-0123456789abcdef@mailroom.example";
  content.date = absl::FromUnixSeconds(1700000000);  // Tue, 14 Nov 2023 22:13:20 +0000
  content.extra_headers = {{"Auto-Submitted", "auto-generated"},
                           {"X-Mailroom-Notification", "n-0123456789abcdef"}};
  return content;
}

// What a body is expected to decode to: every line break CRLF, and a final one.
std::string Canonical(absl::string_view body) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\r' || body[i] == '\n') {
      out += "\r\n";
      if (body[i] == '\r' && i + 1 < body.size() && body[i + 1] == '\n') ++i;
    } else {
      out += body[i];
    }
  }
  if (!absl::EndsWith(out, "\r\n")) out += "\r\n";
  return out;
}

std::string MustBuild(const MailContent& content, const MimeOptions& options = MimeOptions()) {
  absl::StatusOr<std::string> message = BuildMimeMessage(content, options);
  EXPECT_TRUE(message.ok()) << message.status();
  return message.ok() ? *message : "";
}

// Parses `message` back; also checks that no line is longer than 78 characters.
mt::MimeEntity ParseBack(const std::string& message) {
  for (absl::string_view line : absl::StrSplit(message, "\r\n")) {
    EXPECT_LE(line.size(), 78u) << "line: " << line;
  }
  EXPECT_TRUE(absl::EndsWith(message, "\r\n"));
  absl::StatusOr<mt::MimeEntity> parsed = mt::ParseMime(message);
  EXPECT_TRUE(parsed.ok()) << parsed.status() << "\n" << message;
  return parsed.ok() ? *parsed : mt::MimeEntity();
}

std::string Decoded(const mt::MimeEntity& entity, absl::string_view header) {
  absl::StatusOr<std::string> text = mt::DecodeHeaderText(entity.Header(header));
  EXPECT_TRUE(text.ok()) << header << ": " << text.status();
  return text.ok() ? *text : "";
}

std::vector<mt::ParsedMailbox> Mailboxes(const mt::MimeEntity& entity, absl::string_view header) {
  absl::StatusOr<std::vector<mt::ParsedMailbox>> list = mt::ParseAddressList(entity.Header(header));
  EXPECT_TRUE(list.ok()) << header << ": " << list.status();
  return list.ok() ? *list : std::vector<mt::ParsedMailbox>();
}

// The decoded subject of a message built from `content`, which must parse back.
std::string RoundTripSubject(const MailContent& content) {
  const mt::MimeEntity parsed = ParseBack(MustBuild(content));
  EXPECT_EQ(parsed.HeaderCount("Subject"), 1);
  return Decoded(parsed, "Subject");
}

// The text/plain and text/html parts, single part or multipart/alternative.
struct Bodies {
  const mt::MimeEntity* text = nullptr;
  const mt::MimeEntity* html = nullptr;
};
Bodies FindBodies(const mt::MimeEntity& message) {
  Bodies bodies;
  const auto visit = [&](const mt::MimeEntity& entity) {
    if (entity.content_type == "text/plain") bodies.text = &entity;
    if (entity.content_type == "text/html") bodies.html = &entity;
  };
  visit(message);
  for (const mt::MimeEntity& part : message.parts) visit(part);
  return bodies;
}

TEST(BuildMimeMessage, ChineseSubjectAndDisplayNamesDecodeEqual) {
  MailContent content = BaseContent();
  content.subject = std::string(kChineseSubject);
  content.from.display_name = "訪客入口網站";
  content.cc = {{"sponsor@example.com", "李美玲 (Sponsor)"}};
  const std::string message = MustBuild(content);
  const mt::MimeEntity parsed = ParseBack(message);

  EXPECT_EQ(Decoded(parsed, "Subject"), kChineseSubject);
  // Chinese text is shorter in B encoding than in Q.
  EXPECT_THAT(parsed.Header("Subject"), StartsWith("=?UTF-8?B?"));
  const std::vector<mt::ParsedMailbox> from = Mailboxes(parsed, "From");
  ASSERT_EQ(from.size(), 1u);
  EXPECT_EQ(from[0].display_name, "訪客入口網站");
  EXPECT_EQ(from[0].address, "notifications@example.com");
  const std::vector<mt::ParsedMailbox> to = Mailboxes(parsed, "To");
  ASSERT_EQ(to.size(), 1u);
  EXPECT_EQ(to[0].display_name, "王小明");
  EXPECT_EQ(to[0].address, "guest@example.com");
  const std::vector<mt::ParsedMailbox> cc = Mailboxes(parsed, "Cc");
  ASSERT_EQ(cc.size(), 1u);
  EXPECT_EQ(cc[0].display_name, "李美玲 (Sponsor)");
}

TEST(BuildMimeMessage, WritesTheRequiredHeaders) {
  MailContent content = BaseContent();
  content.bcc = {{"audit@example.com", "Audit"}};
  const std::string message = MustBuild(content);
  const mt::MimeEntity parsed = ParseBack(message);

  for (const char* header : {"Date", "From", "To", "Message-ID", "Subject", "MIME-Version",
                             "Content-Type", "Auto-Submitted", "X-Mailroom-Notification"}) {
    EXPECT_EQ(parsed.HeaderCount(header), 1) << header;
  }
  EXPECT_EQ(parsed.Header("Date"), "Tue, 14 Nov 2023 22:13:20 +0000");
  EXPECT_EQ(parsed.Header("Message-ID"), "<n-0123456789abcdef@mailroom.example>");
  EXPECT_EQ(parsed.Header("MIME-Version"), "1.0");
  EXPECT_EQ(parsed.Header("Subject"), "Your guest account");
  EXPECT_EQ(parsed.Header("From"), "ISE Guest Portal <notifications@example.com>");
  EXPECT_EQ(parsed.Header("Auto-Submitted"), "auto-generated");
  EXPECT_EQ(parsed.Header("X-Mailroom-Notification"), "n-0123456789abcdef");
  // Bcc is for the envelope only, and no empty Cc is written.
  EXPECT_EQ(parsed.HeaderCount("Bcc"), 0);
  EXPECT_EQ(parsed.HeaderCount("Cc"), 0);
  EXPECT_THAT(message, Not(HasSubstr("audit@example.com")));
  // Extra headers keep their order.
  EXPECT_LT(message.find("Auto-Submitted:"), message.find("X-Mailroom-Notification:"));

  const Bodies bodies = FindBodies(parsed);
  ASSERT_NE(bodies.text, nullptr);
  ASSERT_NE(bodies.html, nullptr);
  EXPECT_EQ(bodies.text->params.at("charset"), "utf-8");
  EXPECT_EQ(bodies.html->params.at("charset"), "utf-8");
}

TEST(BuildMimeMessage, DateFormats) {
  struct Case {
    absl::Time time;
    const char* formatted;
  };
  const Case cases[] = {
      {absl::FromUnixSeconds(0), "Thu, 1 Jan 1970 00:00:00 +0000"},
      {absl::FromUnixSeconds(1700000000) + absl::Milliseconds(999),
       "Tue, 14 Nov 2023 22:13:20 +0000"},
      {absl::FromCivil(absl::CivilSecond(2024, 2, 29, 9, 5, 7), absl::UTCTimeZone()),
       "Thu, 29 Feb 2024 09:05:07 +0000"},
      {absl::FromCivil(absl::CivilSecond(2026, 12, 6, 23, 59, 59), absl::UTCTimeZone()),
       "Sun, 6 Dec 2026 23:59:59 +0000"},
  };
  for (const Case& c : cases) {
    MailContent content = BaseContent();
    content.date = c.time;
    EXPECT_EQ(ParseBack(MustBuild(content)).Header("Date"), c.formatted);
  }
  MailContent unset = BaseContent();
  unset.date = absl::InfinitePast();
  EXPECT_EQ(BuildMimeMessage(unset).status().message(), "date: not set");
  MailContent ancient = BaseContent();
  ancient.date = absl::FromCivil(absl::CivilSecond(1899, 12, 31), absl::UTCTimeZone());
  EXPECT_THAT(std::string(BuildMimeMessage(ancient).status().message()), StartsWith("date: "));
}

TEST(BuildMimeMessage, AsciiSubjectsFoldAtSpacesAndDecodeEqual) {
  MailContent content = BaseContent();
  std::string subject;
  for (int i = 0; i < 40; ++i) absl::StrAppend(&subject, i == 0 ? "" : " ", "word", i);
  content.subject = subject;
  const std::string message = MustBuild(content);
  const mt::MimeEntity parsed = ParseBack(message);
  EXPECT_EQ(Decoded(parsed, "Subject"), subject);
  EXPECT_THAT(parsed.Header("Subject"), Not(HasSubstr("=?")));  // written as it is
  EXPECT_THAT(message, HasSubstr("\r\n word"));                 // and folded
}

TEST(BuildMimeMessage, SubjectsThatCannotBeWrittenPlainlyAreEncodedExactly) {
  const std::string subjects[] = {
      std::string(kChineseSubject),
      "Grüße aus Zürich",
      " leading and trailing spaces ",
      "doubled  spaces   inside",
      "tab\there",
      "looks like =?UTF-8?B?5L2g?= an encoded-word",
      "a_b=c?d",
      std::string(120, 'x'),  // one word too long to fold
      "emoji 😀🎉 and 𝄞 (four-byte characters)",
      "訪客帳號即將到期，請於明日前延長。訪客帳號即將到期，請於明日前延長。"
      "訪客帳號即將到期，請於明日前延長。訪客帳號即將到期，請於明日前延長。",
  };
  for (const std::string& subject : subjects) {
    SCOPED_TRACE(subject);
    MailContent content = BaseContent();
    content.subject = subject;
    EXPECT_EQ(RoundTripSubject(content), subject);
  }
  MailContent latin = BaseContent();
  latin.subject = "Your guest account at Café Zürich expires";
  // Mostly ASCII: Q encoding is the shorter one.
  EXPECT_THAT(ParseBack(MustBuild(latin)).Header("Subject"), StartsWith("=?UTF-8?Q?"));
}

// Every split point between encoded-words: subjects of growing length mixing 1-, 2-, 3- and
// 4-byte characters. The parser refuses an encoded-word over 75 characters or one holding
// part of a character; ParseBack refuses a line over 78.
TEST(BuildMimeMessage, EncodedWordsNeverSplitACharacter) {
  const std::vector<std::string> pieces = {"a", "é", "王", "😀", " ", "=", "?", "_"};
  for (const absl::string_view header_name : {"subject", "display_name"}) {
    std::string text;
    for (int i = 0; i < 160; ++i) {
      text += pieces[(i * 7 + i / 3) % pieces.size()];
      MailContent content = BaseContent();
      if (header_name == "subject") {
        content.subject = text;
        ASSERT_EQ(RoundTripSubject(content), text) << i;
      } else {
        content.to[0].display_name = text;
        const std::vector<mt::ParsedMailbox> to = Mailboxes(ParseBack(MustBuild(content)), "To");
        ASSERT_EQ(to.size(), 1u);
        ASSERT_EQ(to[0].display_name, text) << i;
      }
    }
  }
}

TEST(BuildMimeMessage, DisplayNamesWithSpecialsAreQuotedOrEncoded) {
  const std::string names[] = {
      "ISE Guest Portal", "Smith, John", "He said \"hi\" \\o/", "user@example.com", "<script>",
      "=?UTF-8?B?5L2g?=", " padded ",    std::string(100, 'n'), "Ünïcödé Ñame",
  };
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    MailContent content = BaseContent();
    content.from.display_name = name;
    content.to = {{"guest@example.com", name}, {"second@example.com", ""}};
    const mt::MimeEntity parsed = ParseBack(MustBuild(content));
    const std::vector<mt::ParsedMailbox> from = Mailboxes(parsed, "From");
    ASSERT_EQ(from.size(), 1u);
    EXPECT_EQ(from[0].display_name, name);
    EXPECT_EQ(from[0].address, "notifications@example.com");
    const std::vector<mt::ParsedMailbox> to = Mailboxes(parsed, "To");
    ASSERT_EQ(to.size(), 2u);
    EXPECT_EQ(to[0].display_name, name);
    EXPECT_EQ(to[1].display_name, "");
    EXPECT_EQ(to[1].address, "second@example.com");
  }
  MailContent comma = BaseContent();
  comma.from.display_name = "Smith, John";
  EXPECT_EQ(ParseBack(MustBuild(comma)).Header("From"),
            "\"Smith, John\" <notifications@example.com>");
}

TEST(BuildMimeMessage, ManyRecipientsFoldAndKeepTheirOrder) {
  MailContent content = BaseContent();
  content.to.clear();
  for (int i = 0; i < 30; ++i) {
    content.to.push_back(
        {absl::StrCat("guest", i, "@bücher.example"), i % 3 == 0   ? absl::StrCat("訪客 ", i)
                                                      : i % 3 == 1 ? ""
                                                                   : "Guest"});
  }
  const mt::MimeEntity parsed = ParseBack(MustBuild(content));
  const std::vector<mt::ParsedMailbox> to = Mailboxes(parsed, "To");
  ASSERT_EQ(to.size(), 30u);
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(to[i].address, absl::StrCat("guest", i, "@xn--bcher-kva.example"));
    EXPECT_EQ(to[i].display_name, content.to[i].display_name);
  }
}

TEST(BuildMimeMessage, BodiesDecodeEqual) {
  const std::string long_line(300, 'L');
  const std::string bodies[] = {
      "short\n",
      "no final line break",
      long_line + "\n" + long_line,
      "trailing spaces   \ntrailing tab\t\n   \n",
      "equals = signs ==\n=3D is not an escape\n=\n",
      ".\n..\n.hidden\n. dot space\n",
      "From the desk of the sponsor\nFrom\n",
      "訪客帳號即將到期 — 王小明\n請於明日前延長。\n",
      "emoji 😀🎉 and 𝄞, mixed with text\n",
      "CRLF\r\nLF\nCR\rend\r\n",
      "\n\n\nblank lines first\n\n",
      "control \x01\x1b\x7f characters\n",
      std::string(500, '=') + "\n" + std::string(200, ' ') + "x\n",
      // Long lines of multi-byte characters: soft breaks inside UTF-8 sequences are fine in
      // quoted-printable, and must decode back.
      std::string("é") + std::string(100, 'a') + "é" + std::string(40, ' ') + "王\n",
  };
  for (const std::string& body : bodies) {
    SCOPED_TRACE(absl::CEscape(body));
    MailContent content = BaseContent();
    content.text_body = body;
    content.html_body = "<p>" + body + "</p>";
    const mt::MimeEntity parsed = ParseBack(MustBuild(content));
    const Bodies decoded = FindBodies(parsed);
    ASSERT_NE(decoded.text, nullptr);
    ASSERT_NE(decoded.html, nullptr);
    EXPECT_EQ(decoded.text->body, Canonical(body));
    EXPECT_EQ(decoded.html->body, Canonical("<p>" + body + "</p>"));
  }
}

TEST(BuildMimeMessage, ChoosesTheShorterTransferEncoding) {
  MailContent content = BaseContent();
  content.text_body = "Plain English text, with one café.\n";
  content.html_body = "訪客帳號即將到期。請於明日前延長。訪客帳號即將到期。\n";
  const mt::MimeEntity parsed = ParseBack(MustBuild(content));
  const Bodies bodies = FindBodies(parsed);
  ASSERT_NE(bodies.text, nullptr);
  ASSERT_NE(bodies.html, nullptr);
  EXPECT_EQ(bodies.text->transfer_encoding, "quoted-printable");
  EXPECT_EQ(bodies.html->transfer_encoding, "base64");
}

TEST(BuildMimeMessage, QuotedPrintableProtectsLineStarts) {
  MailContent content = BaseContent();
  content.text_body = ".\nFrom here\n";
  content.html_body.clear();
  const std::string message = MustBuild(content);
  // Neither a lone "." line (the end of DATA, were dot-stuffing forgotten) nor a "From "
  // line (mangled into ">From " by mbox tools) reaches the wire.
  EXPECT_THAT(message, HasSubstr("\r\n=2E\r\n=46rom here\r\n"));
}

TEST(BuildMimeMessage, MultipartAlternativeHasTextThenHtml) {
  const std::string message = MustBuild(BaseContent());
  const mt::MimeEntity parsed = ParseBack(message);
  EXPECT_EQ(parsed.content_type, "multipart/alternative");
  const std::string boundary = parsed.params.at("boundary");
  EXPECT_THAT(boundary, StartsWith("=_"));
  ASSERT_EQ(parsed.parts.size(), 2u);
  EXPECT_EQ(parsed.parts[0].content_type, "text/plain");
  EXPECT_EQ(parsed.parts[1].content_type, "text/html");
  EXPECT_EQ(parsed.parts[0].body, Canonical(BaseContent().text_body));
  EXPECT_EQ(parsed.parts[1].body, Canonical(BaseContent().html_body));
  for (const mt::MimeEntity& part : parsed.parts) {
    EXPECT_THAT(part.raw_body, Not(HasSubstr(boundary)));
  }
  // Deterministic: a retry rebuilds the same bytes.
  EXPECT_EQ(MustBuild(BaseContent()), message);
}

TEST(BuildMimeMessage, BoundaryCannotBeFoundInContentThatQuotesIt) {
  // A body that contains the boundary the first message used, verbatim.
  const mt::MimeEntity first = ParseBack(MustBuild(BaseContent()));
  const std::string old_boundary = first.params.at("boundary");
  MailContent content = BaseContent();
  content.text_body = absl::StrCat("--", old_boundary, "\n--", old_boundary, "--\n");
  const mt::MimeEntity parsed = ParseBack(MustBuild(content));
  ASSERT_EQ(parsed.parts.size(), 2u);
  EXPECT_EQ(parsed.parts[0].body, Canonical(content.text_body));
}

TEST(BuildMimeMessage, OneBodyIsASinglePart) {
  MailContent text_only = BaseContent();
  text_only.html_body.clear();
  const mt::MimeEntity text = ParseBack(MustBuild(text_only));
  EXPECT_EQ(text.content_type, "text/plain");
  EXPECT_EQ(text.params.at("charset"), "utf-8");
  EXPECT_THAT(text.parts, IsEmpty());
  EXPECT_EQ(text.body, Canonical(text_only.text_body));

  MailContent html_only = BaseContent();
  html_only.text_body.clear();
  const mt::MimeEntity html = ParseBack(MustBuild(html_only));
  EXPECT_EQ(html.content_type, "text/html");
  EXPECT_EQ(html.body, Canonical(html_only.html_body));

  MailContent none = BaseContent();
  none.text_body.clear();
  none.html_body.clear();
  EXPECT_THAT(std::string(BuildMimeMessage(none).status().message()),
              StartsWith("text_body: no body"));
}

struct RefusalCase {
  const char* name;
  void (*mutate)(MailContent*);
  const char* message;  // the whole status message, or its start when ending in "..."
};

void ExpectRefusals(const std::vector<RefusalCase>& cases) {
  for (const RefusalCase& c : cases) {
    SCOPED_TRACE(c.name);
    MailContent content = BaseContent();
    c.mutate(&content);
    const absl::Status status = BuildMimeMessage(content).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    const std::string expected = c.message;
    if (absl::EndsWith(expected, "...")) {
      EXPECT_THAT(std::string(status.message()),
                  StartsWith(expected.substr(0, expected.size() - 3)));
    } else {
      EXPECT_EQ(status.message(), expected);
    }
  }
}

TEST(BuildMimeMessage, HeaderInjectionIsRefused) {
  ExpectRefusals({
      {"subject CRLF", [](MailContent* c) { c->subject = "x\r\nBcc: evil@example.net"; },
       "subject: contains CR or LF"},
      {"subject LF", [](MailContent* c) { c->subject = "x\nBcc: evil@example.net"; },
       "subject: contains CR or LF"},
      {"subject CR", [](MailContent* c) { c->subject = "x\rBcc: evil@example.net"; },
       "subject: contains CR or LF"},
      {"subject NUL", [](MailContent* c) { c->subject = std::string("x\0y", 3); },
       "subject: contains NUL"},
      {"subject ESC", [](MailContent* c) { c->subject = "x\x1b[31mred"; },
       "subject: contains control character 0x1B"},
      {"from display name", [](MailContent* c) { c->from.display_name = "Portal\nBcc: x@y.z"; },
       "from.display_name: contains CR or LF"},
      {"to display name",
       [](MailContent* c) {
         c->to.push_back({"second@example.com", "Second\r\nX-Evil: 1"});
       },
       "to[1].display_name: contains CR or LF"},
      {"cc display name",
       [](MailContent* c) {
         c->cc = {{"cc@example.com", "a\nb"}};
       },
       "cc[0].display_name: contains CR or LF"},
      {"extra header value",
       [](MailContent* c) {
         c->extra_headers.push_back({"X-Note", "a\rBcc: evil@x.example"});
       },
       "extra_headers[2].value: contains CR or LF"},
      {"extra header name",
       [](MailContent* c) {
         c->extra_headers = {{"X-Evil\r\nBcc", "evil@x.example"}};
       },
       "extra_headers[0].name: contains CR or LF"},
      {"message id", [](MailContent* c) { c->message_id = "a@b.example\r\nBcc: x@y.z"; },
       "message_id: contains CR or LF"},
      {"to address",
       [](MailContent* c) { c->to[0].address = "guest@example.com\r\nRCPT TO:<x@y.example>"; },
       "to[0].address: contains CR or LF"},
      {"bcc address",
       [](MailContent* c) {
         c->bcc = {{"a@b.example\n", ""}};
       },
       "bcc[0].address: contains CR or LF"},
  });
}

TEST(BuildMimeMessage, MalformedUtf8IsRefused) {
  ExpectRefusals({
      {"subject", [](MailContent* c) { c->subject = "訪客\xe5\xb8"; },
       "subject: is not valid UTF-8 (byte 6)"},
      {"text body", [](MailContent* c) { c->text_body = "ok\n\xff"; },
       "text_body: is not valid UTF-8 (byte 3)"},
      {"html body overlong", [](MailContent* c) { c->html_body = "<p>\xc0\xbc</p>"; },
       "html_body: is not valid UTF-8 (byte 3)"},
      {"surrogate in display name", [](MailContent* c) { c->from.display_name = "\xed\xa0\x80"; },
       "from.display_name: is not valid UTF-8 (byte 0)"},
      {"extra header",
       [](MailContent* c) {
         c->extra_headers = {{"X-Name", "\x80"}};
       },
       "extra_headers[0].value: is not valid UTF-8 (byte 0)"},
      {"NUL in body", [](MailContent* c) { c->text_body = std::string("a\0b", 3); },
       "text_body: contains NUL"},
  });
}

TEST(BuildMimeMessage, InvalidAddressesAreRefusedNamingTheField) {
  ExpectRefusals({
      {"from", [](MailContent* c) { c->from.address = "notifications"; },
       "from.address: \"notifications\" has no '@'"},
      {"to[2]",
       [](MailContent* c) {
         c->to.push_back({"b@example.com", ""});
         c->to.push_back({"c@-x.example", ""});
       },
       "to[2].address: invalid domain label \"-x\": must not start or end with '-'"},
      {"cc",
       [](MailContent* c) {
         c->cc = {{"a@b@example.com", ""}};
       },
       "cc[0].address: \"a@b@example.com\" has more than one '@'"},
      {"bcc",
       [](MailContent* c) {
         c->bcc = {{"guest@localhost", ""}};
       },
       "bcc[0].address: domain \"localhost\" has no dot..."},
      {"SMTPUTF8 local part", [](MailContent* c) { c->to[0].address = "用户@例子.广告"; },
       "to[0].address: local part \"用户\" is not ASCII..."},
      {"no recipients", [](MailContent* c) { c->to.clear(); },
       "to: at least one recipient is required (to, cc or bcc)"},
  });
}

TEST(BuildMimeMessage, ExtraHeadersAreCheckedAndEncoded) {
  ExpectRefusals({
      {"Bcc",
       [](MailContent* c) {
         c->extra_headers = {{"Bcc", "evil@x.example"}};
       },
       "extra_headers[0].name: \"Bcc\" is written by mailroom..."},
      {"content-type",
       [](MailContent* c) {
         c->extra_headers = {{"content-type", "text/plain"}};
       },
       "extra_headers[0].name: \"content-type\" is written by mailroom..."},
      {"Message-Id",
       [](MailContent* c) {
         c->extra_headers = {{"Message-Id", "<a@b>"}};
       },
       "extra_headers[0].name: \"Message-Id\" is written by mailroom..."},
      {"space in name",
       [](MailContent* c) {
         c->extra_headers = {{"X Note", "a"}};
       },
       "extra_headers[0].name: \"X Note\" is not a header field name"},
      {"colon in name",
       [](MailContent* c) {
         c->extra_headers = {{"X:Note", "a"}};
       },
       "extra_headers[0].name: \"X:Note\" is not a header field name"},
      {"empty name",
       [](MailContent* c) {
         c->extra_headers = {{"", "a"}};
       },
       "extra_headers[0].name: \"\" is not a header field name"},
  });

  MailContent content = BaseContent();
  std::string long_value;
  for (int i = 0; i < 30; ++i) absl::StrAppend(&long_value, i == 0 ? "" : " ", "token", i);
  content.extra_headers = {{"X-Guest-Name", "王小明"},
                           {"X-Long", long_value},
                           {"List-Unsubscribe", "<mailto:unsubscribe@example.com>"}};
  const mt::MimeEntity parsed = ParseBack(MustBuild(content));
  EXPECT_EQ(Decoded(parsed, "X-Guest-Name"), "王小明");
  EXPECT_EQ(parsed.Header("X-Long"), long_value);
  EXPECT_EQ(parsed.Header("List-Unsubscribe"), "<mailto:unsubscribe@example.com>");
}

TEST(BuildMimeMessage, MessageIdIsValidated) {
  ExpectRefusals({
      {"missing", [](MailContent* c) { c->message_id.clear(); }, "message_id: required"},
      {"brackets", [](MailContent* c) { c->message_id = "<a@b.example>"; },
       "message_id: give the Message-ID without angle brackets"},
      {"no @", [](MailContent* c) { c->message_id = "abc"; },
       "message_id: \"abc\" is not of the form unique@domain (two dot-atoms)"},
      {"two @", [](MailContent* c) { c->message_id = "a@b@c"; }, "message_id: \"a@b@c\"..."},
      {"space", [](MailContent* c) { c->message_id = "a b@c"; }, "message_id: \"a b@c\"..."},
      {"too long", [](MailContent* c) { c->message_id = std::string(250, 'a') + "@b"; },
       "message_id: is 252 octets, more than 250"},
  });
}

TEST(BuildMimeMessage, LongMessageIdFoldsBeforeTheBracket) {
  MailContent content = BaseContent();
  content.message_id = std::string(50, 'm') + "@mailroom.example";
  const std::string message = MustBuild(content);
  EXPECT_THAT(message, HasSubstr("\r\nMessage-ID:\r\n <" + content.message_id + ">\r\n"));
  EXPECT_EQ(ParseBack(message).Header("Message-ID"), "<" + content.message_id + ">");
}

// The only lines allowed past 78 characters: an address or Message-ID that cannot be broken.
// They still parse back, and stay far below RFC 5322's 998.
TEST(BuildMimeMessage, UnbreakableTokensMakeLongButValidLines) {
  MailContent content = BaseContent();
  std::string domain;
  for (int i = 0; i < 3; ++i) domain += std::string(59, 'd') + ".";  // 252 octets in all
  domain += "example";
  const std::string address = std::string(64, 'l') + "@" + domain;
  content.to = {{address, "王小明"}, {"guest@example.com", ""}};
  content.message_id = std::string(kMaxMessageIdOctets - 10, 'm') + "@a.example";
  content.extra_headers = {{"X-Empty", ""}};
  const std::string message = MustBuild(content);
  absl::StatusOr<mt::MimeEntity> parsed = mt::ParseMime(message);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const std::vector<mt::ParsedMailbox> to = Mailboxes(*parsed, "To");
  ASSERT_EQ(to.size(), 2u);
  EXPECT_EQ(to[0].address, address);
  EXPECT_EQ(to[0].display_name, "王小明");
  EXPECT_EQ(parsed->Header("Message-ID"), "<" + content.message_id + ">");
  EXPECT_THAT(message, HasSubstr("\r\nX-Empty:\r\n"));
}

TEST(GenerateMessageId, JoinsAndConvertsTheDomain) {
  absl::StatusOr<std::string> id = GenerateMessageId("n-42.attempt", "Bücher.Example");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "n-42.attempt@xn--bcher-kva.example");
  EXPECT_TRUE(ValidateMessageId(*id).ok());
  EXPECT_EQ(GenerateMessageId("a b", "example.com").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(GenerateMessageId("<x>", "example.com").status().message()),
              StartsWith("message_id: unique part \"<x>\" is not a dot-atom"));
  EXPECT_EQ(GenerateMessageId("x", "example.com\r\n").status().message(),
            "message_id: contains CR or LF");
  EXPECT_THAT(std::string(GenerateMessageId("x", "-bad.example").status().message()),
              StartsWith("message_id: invalid domain label \"-bad\""));
  EXPECT_THAT(std::string(GenerateMessageId("x", "").status().message()),
              StartsWith("message_id: empty domain"));
}

TEST(EnvelopeRecipients, ToCcBccInOrderOnceEachInAsciiForm) {
  MailContent content = BaseContent();
  content.to = {{"guest@bücher.example", "Gast"}, {"second@example.com", ""}};
  content.cc = {{"guest@BÜCHER.example", ""}, {"sponsor@example.com", ""}};
  content.bcc = {{"audit@example.com", ""}, {"second@example.com", ""}};
  absl::StatusOr<std::vector<std::string>> recipients = EnvelopeRecipients(content);
  ASSERT_TRUE(recipients.ok()) << recipients.status();
  EXPECT_THAT(*recipients, ElementsAre("guest@xn--bcher-kva.example", "second@example.com",
                                       "sponsor@example.com", "audit@example.com"));
  absl::StatusOr<std::string> sender = EnvelopeSender(content);
  ASSERT_TRUE(sender.ok());
  EXPECT_EQ(*sender, "notifications@example.com");

  content.to.clear();
  content.cc.clear();
  content.bcc.clear();
  EXPECT_EQ(EnvelopeRecipients(content).status().message(),
            "to: at least one recipient is required (to, cc or bcc)");
}

TEST(BuildMimeMessage, BccOnlyMessageHasNoRecipientHeaders) {
  MailContent content = BaseContent();
  content.to.clear();
  content.bcc = {{"audit@example.com", "Audit"}};
  const std::string message = MustBuild(content);
  const mt::MimeEntity parsed = ParseBack(message);
  EXPECT_EQ(parsed.HeaderCount("To"), 0);
  EXPECT_EQ(parsed.HeaderCount("Bcc"), 0);
  EXPECT_THAT(message, Not(HasSubstr("audit@")));
}

TEST(BuildMimeMessage, RecipientLimit) {
  MailContent content = BaseContent();
  content.to.clear();
  for (int i = 0; i < 4; ++i) content.to.push_back({absl::StrCat("g", i, "@example.com"), ""});
  content.bcc = {{"g0@example.com", ""}};  // a duplicate does not count twice
  MimeOptions options;
  options.max_recipients = 4;
  EXPECT_TRUE(BuildMimeMessage(content, options).ok());
  content.bcc = {{"g4@example.com", ""}};
  EXPECT_EQ(BuildMimeMessage(content, options).status().message(),
            "to: 5 distinct recipients (to, cc and bcc), more than the limit 4");
}

TEST(BuildMimeMessage, SizeLimit) {
  MailContent content = BaseContent();
  content.text_body = std::string(3000, 'a');
  content.html_body.clear();
  const std::string message = MustBuild(content);

  MimeOptions exact;
  exact.max_bytes = message.size();
  EXPECT_TRUE(BuildMimeMessage(content, exact).ok());
  MimeOptions one_less;
  one_less.max_bytes = message.size() - 1;
  EXPECT_EQ(BuildMimeMessage(content, one_less).status().message(),
            absl::StrCat("message is ", message.size(), " bytes, more than the limit ",
                         message.size() - 1));
  MimeOptions tiny;
  tiny.max_bytes = 1000;
  EXPECT_EQ(BuildMimeMessage(content, tiny).status().message(),
            "message bodies alone are 3000 bytes, more than the limit 1000");
  EXPECT_EQ(MimeOptions().max_bytes, 25u * 1024 * 1024);
}

// A second opinion: Python's email package (policy=default, the modern parser) reads the
// message and reports decoded values, hex-encoded, one per line; and any defects it found.
TEST(BuildMimeMessage, PythonEmailParserAgrees) {
  if (std::system("python3 -c 'import email.policy' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3 with the email package is not installed";
  }
  MailContent content = BaseContent();
  content.subject = absl::StrCat(kChineseSubject, " — 請於明日前延長您的訪客帳號，以免無法連線");
  content.from.display_name = "訪客入口網站";
  content.to = {{"guest@bücher.example", "王小明"}, {"second@example.com", "Smith, John"}};
  content.text_body =
      "親愛的 王小明：\n.\nFrom here = there   \n" + std::string(200, 'x') + "\n😀\n";
  content.html_body = "<p>親愛的 王小明：</p>\n<p>Plain = text</p>\n";
  const std::string message = MustBuild(content);

  const char* tmpdir = std::getenv("TEST_TMPDIR");
  const std::string dir = tmpdir != nullptr ? tmpdir : "/tmp";
  const std::string eml = dir + "/python_check.eml";
  const std::string script = dir + "/python_check.py";
  std::ofstream(eml, std::ios::binary) << message;
  std::ofstream(script) << R"(import sys, email, email.policy
with open(sys.argv[1], 'rb') as f:
    msg = email.message_from_binary_file(f, policy=email.policy.default)
def out(key, value):
    print(key, value.encode('utf-8').hex())
out('subject', str(msg['subject']))
out('from.name', msg['from'].addresses[0].display_name)
out('from.address', msg['from'].addresses[0].addr_spec)
for i, a in enumerate(msg['to'].addresses):
    out('to%d.name' % i, a.display_name)
    out('to%d.address' % i, a.addr_spec)
out('text', msg.get_body(preferencelist=('plain',)).get_content())
out('html', msg.get_body(preferencelist=('html',)).get_content())
defects = [str(d) for part in msg.walk() for d in part.defects]
for name in ('subject', 'from', 'to'):
    defects += [str(d) for d in msg[name].defects]
out('defects', ';'.join(defects))
)";
  FILE* pipe = popen(absl::StrCat("python3 ", script, " ", eml).c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, n);
  ASSERT_EQ(pclose(pipe), 0) << output;

  std::map<std::string, std::string> values;
  for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    const std::vector<std::string> fields = absl::StrSplit(line, absl::MaxSplits(' ', 1));
    ASSERT_EQ(fields.size(), 2u) << line;
    values[fields[0]] = absl::HexStringToBytes(fields[1]);
  }
  // Python turns the line breaks of a quoted-printable body into "\n" and keeps those of a
  // base64 one: compare with "\n" on both sides.
  const auto lf = [](absl::string_view text) {
    return absl::StrReplaceAll(Canonical(text), {{"\r\n", "\n"}});
  };
  values["text"] = absl::StrReplaceAll(values["text"], {{"\r\n", "\n"}});
  values["html"] = absl::StrReplaceAll(values["html"], {{"\r\n", "\n"}});
  EXPECT_EQ(values["subject"], content.subject);
  EXPECT_EQ(values["from.name"], "訪客入口網站");
  EXPECT_EQ(values["from.address"], "notifications@example.com");
  EXPECT_EQ(values["to0.name"], "王小明");
  EXPECT_EQ(values["to0.address"], "guest@xn--bcher-kva.example");
  EXPECT_EQ(values["to1.name"], "Smith, John");
  EXPECT_EQ(values["to1.address"], "second@example.com");
  EXPECT_EQ(values["text"], lf(content.text_body));
  EXPECT_EQ(values["html"], lf(content.html_body));
  EXPECT_EQ(values["defects"], "");
}

}  // namespace
}  // namespace mailroom
