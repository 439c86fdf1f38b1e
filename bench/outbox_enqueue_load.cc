// Load generator for the durable outbox (common/outbox/outbox.h): opens a fresh outbox, renders N
// realistic guest notifications with the real MIME builder (Chinese display names and subject,
// a text and an HTML body, as a PSN portal sends them), then times N Outbox::Enqueue calls
// from T threads. Prints one line of key=value pairs: enqueue latency p50/p99/max, enqueues/s,
// message size, and the rendering cost (not part of the enqueue latency, reported apart).
//
//   outbox_enqueue_load --outbox=/var/tmp/x/outbox.db --count=2000 [--sync_every_commit=false]
//                       [--threads=1] [--sample_message=FILE]
//
// The outbox file must be on the disk a node would use: on tmpfs an fsync costs nothing and
// the durable figure would mean nothing.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/base/clock.h"
#include "common/base/logging.h"
#include "common/mail/mime_message.h"
#include "common/outbox/outbox.h"

ABSL_FLAG(std::string, outbox, "", "outbox file to create (must not exist yet)");
ABSL_FLAG(int, count, 2000, "enqueues in total");
ABSL_FLAG(int, threads, 1, "concurrent producers (one Enqueue at a time each)");
ABSL_FLAG(bool, sync_every_commit, true, "PRAGMA synchronous=FULL (false: NORMAL)");
ABSL_FLAG(std::string, sample_message, "", "write the first rendered message here");

namespace mailroom {
namespace {

namespace cv1 = ::mailroom::common::v1;

// A guest-credentials notification of the kind a sponsor portal sends: about 3 KB rendered,
// base64 bodies (Chinese text), encoded-word headers.
MailContent GuestCredentials(int n, const std::string& message_id, absl::Time date) {
  MailContent content;
  content.from = {"noreply@example.test", "訪客網路 Guest Access"};
  content.to = {{absl::StrCat("guest", n, "@example.test"), "訪客 王小明"}};
  content.cc = {{"sponsor@example.test", "Sponsor 陳大文"}};
  content.subject = absl::StrCat("您的訪客帳號已建立 — Your guest account is ready (#", n, ")");
  const std::string user = absl::StrCat("guest", 100000 + n);
  const std::string password = absl::StrCat("Xq7-", n * 7919 % 100000, "-pLm");
  content.text_body = absl::StrCat(
      "王小明 您好，\n\n",
      "您的訪客網路帳號已由 陳大文 建立。請使用以下資訊登入：\n\n",
      "  使用者名稱 / Username: ", user, "\n",
      "  密碼 / Password: ", password, "\n",
      "  有效期間 / Valid: 2025-06-01 09:00 – 2025-06-03 18:00 (Asia/Taipei)\n",
      "  網路 / SSID: Corp-Guest\n\n",
      "連線後請開啟瀏覽器，系統會自動導向訪客入口網站並要求您接受使用條款。\n",
      "After connecting, open a browser: you will be taken to the guest portal to accept the\n",
      "acceptable use policy. Your account stops working at the end of its validity period.\n\n",
      "如有問題，請聯絡您的接待人或服務台 (分機 1234)。\n",
      "Questions? Contact your sponsor or the help desk (extension 1234).\n\n",
      "— 訪客網路 Guest Access\n");
  content.html_body = absl::StrCat(
      "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Guest account</title></head>",
      "<body style=\"font-family:Arial,sans-serif;font-size:14px;color:#222\">",
      "<p>王小明 您好，</p><p>您的訪客網路帳號已由 <b>陳大文</b> 建立。請使用以下資訊登入：</p>",
      "<table style=\"border-collapse:collapse\" cellpadding=\"6\">",
      "<tr><td style=\"border:1px solid #ccc\">使用者名稱 / Username</td>",
      "<td style=\"border:1px solid #ccc\"><code>", user, "</code></td></tr>",
      "<tr><td style=\"border:1px solid #ccc\">密碼 / Password</td>",
      "<td style=\"border:1px solid #ccc\"><code>", password, "</code></td></tr>",
      "<tr><td style=\"border:1px solid #ccc\">有效期間 / Valid</td>",
      "<td style=\"border:1px solid #ccc\">2025-06-01 09:00 – 2025-06-03 18:00 (Asia/Taipei)</td></tr>",
      "<tr><td style=\"border:1px solid #ccc\">網路 / SSID</td>",
      "<td style=\"border:1px solid #ccc\">Corp-Guest</td></tr></table>",
      "<p>連線後請開啟瀏覽器，系統會自動導向訪客入口網站並要求您接受使用條款。<br>",
      "After connecting, open a browser: you will be taken to the guest portal to accept the ",
      "acceptable use policy.</p>",
      "<p style=\"color:#666\">如有問題，請聯絡您的接待人或服務台 (分機 1234)。<br>",
      "Questions? Contact your sponsor or the help desk (extension 1234).</p>",
      "<p>— 訪客網路 Guest Access</p></body></html>");
  content.message_id = message_id;
  content.date = date;
  content.extra_headers = {{"Auto-Submitted", "auto-generated"}};
  return content;
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()));
  return sorted[i];
}

int Run() {
  Logging::SetDefaultLevel(LogLevel::kWarn);
  const int count = std::max(1, absl::GetFlag(FLAGS_count));
  const int threads = std::max(1, absl::GetFlag(FLAGS_threads));
  RealClock& clock = RealClock::Get();
  OutboxOptions options;
  options.node_name = "psn1";
  options.sync_every_commit = absl::GetFlag(FLAGS_sync_every_commit);
  absl::StatusOr<std::unique_ptr<Outbox>> outbox =
      Outbox::Open(absl::GetFlag(FLAGS_outbox), &clock, options);
  if (!outbox.ok()) {
    std::cerr << "outbox_enqueue_load: " << outbox.status() << "\n";
    return 1;
  }

  // Render every message first: the figure asked for is the durable commit, and rendering
  // (pure CPU, done by the portal before it calls Enqueue) is reported on its own.
  std::vector<NewNotification> notifications(count);
  size_t bytes = 0;
  const absl::Time render_start = absl::Now();
  for (int n = 0; n < count; ++n) {
    const std::string message_id = (*outbox)->NewMessageId();
    MailContent content = GuestCredentials(n, message_id, clock.Now());
    absl::StatusOr<std::string> message = BuildMimeMessage(content);
    if (!message.ok()) {
      std::cerr << "outbox_enqueue_load: " << message.status() << "\n";
      return 1;
    }
    NewNotification& notification = notifications[n];
    notification.idempotency_key = absl::StrCat("bench-", n);
    notification.request_fingerprint = absl::StrCat("guest-credentials n=", n);
    notification.kind = cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS;
    notification.from.set_address(content.from.address);
    notification.from.set_display_name(content.from.display_name);
    for (const MailAddress& to : content.to) {
      cv1::Recipient recipient;
      recipient.mutable_address()->set_address(to.address);
      recipient.set_type(cv1::RECIPIENT_TYPE_TO);
      notification.recipients.push_back(recipient);
    }
    for (const MailAddress& cc : content.cc) {
      cv1::Recipient recipient;
      recipient.mutable_address()->set_address(cc.address);
      recipient.set_type(cv1::RECIPIENT_TYPE_CC);
      notification.recipients.push_back(recipient);
    }
    notification.subject = content.subject;
    notification.message_id = message_id;
    notification.message = *std::move(message);
    bytes += notification.message.size();
  }
  const absl::Duration render = absl::Now() - render_start;
  if (!absl::GetFlag(FLAGS_sample_message).empty()) {
    std::ofstream(absl::GetFlag(FLAGS_sample_message), std::ios::binary)
        << notifications[0].message;
  }

  std::vector<std::vector<double>> latencies(threads);
  std::vector<int> failures(threads, 0);
  std::vector<std::thread> workers;
  const absl::Time start = absl::Now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      // Thread t takes every threads-th notification, so each idempotency key is used once.
      for (int n = t; n < count; n += threads) {
        const absl::Time before = absl::Now();
        absl::StatusOr<EnqueueResult> queued = (*outbox)->Enqueue(notifications[n]);
        latencies[t].push_back(absl::ToDoubleMilliseconds(absl::Now() - before));
        if (!queued.ok() || queued->duplicate) {
          if (failures[t]++ == 0) std::cerr << "outbox_enqueue_load: " << queued.status() << "\n";
        }
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  const absl::Duration elapsed = absl::Now() - start;

  std::vector<double> all;
  int failed = 0;
  for (int t = 0; t < threads; ++t) {
    all.insert(all.end(), latencies[t].begin(), latencies[t].end());
    failed += failures[t];
  }
  std::sort(all.begin(), all.end());
  absl::StatusOr<OutboxCounts> counts = (*outbox)->Counts();
  std::cout << absl::StrFormat(
                   "count=%d threads=%d sync_every_commit=%d failed=%d queued=%d "
                   "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f per_s=%.0f msg_bytes=%d render_us=%.0f",
                   count, threads, options.sync_every_commit ? 1 : 0, failed,
                   counts.ok() ? static_cast<int>(counts->queued()) : -1, Percentile(all, 0.50),
                   Percentile(all, 0.99), all.back(), count / absl::ToDoubleSeconds(elapsed),
                   static_cast<int>(bytes / count), absl::ToDoubleMicroseconds(render) / count)
            << std::endl;
  return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace mailroom

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return mailroom::Run();
}
