// Provides FakeHttpTransport: answers PostForm from a script of responses or errors and
// records every request, optionally holding each call until the test releases it; and
// ForwardingHttpTransport, an owned stand-in that forwards to it.
// Thread-safe.
#ifndef MAILROOM_TESTS_TESTING_FAKE_HTTP_TRANSPORT_H_
#define MAILROOM_TESTS_TESTING_FAKE_HTTP_TRANSPORT_H_

#include <deque>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/rpc/http_transport.h"

namespace mailroom::testing {

class FakeHttpTransport : public HttpTransport {
 public:
  // Queues an answer; when the queue is empty the last answer repeats.
  void Enqueue(absl::StatusOr<HttpResponse> answer) {
    absl::MutexLock lock(&mu_);
    answers_.push_back(std::move(answer));
  }
  void EnqueueJson(int status, std::string body, std::string retry_after = "") {
    HttpResponse response;
    response.status = status;
    response.body = std::move(body);
    response.retry_after = std::move(retry_after);
    response.content_type = "application/json; charset=utf-8";
    Enqueue(response);
  }
  // While held, calls block inside PostForm (after being counted).
  void Hold() {
    absl::MutexLock lock(&mu_);
    held_ = true;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    held_ = false;
  }

  absl::StatusOr<HttpResponse> PostForm(const HttpRequest& request) override {
    absl::MutexLock lock(&mu_);
    requests_.push_back(request);
    mu_.Await(absl::Condition(+[](bool* held) { return !*held; }, &held_));
    if (!answers_.empty()) {
      last_answer_ = answers_.front();
      answers_.pop_front();
    }
    return last_answer_;
  }

  std::vector<HttpRequest> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  int request_count() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(requests_.size());
  }

 private:
  absl::Mutex mu_;
  std::deque<absl::StatusOr<HttpResponse>> answers_;
  absl::StatusOr<HttpResponse> last_answer_ =
      absl::InternalError("FakeHttpTransport: nothing scripted");
  std::vector<HttpRequest> requests_;
  bool held_ = false;
};

// Forwards every request to another transport (which the test keeps): for code that takes
// ownership of its transport while the test inspects a FakeHttpTransport.
class ForwardingHttpTransport final : public HttpTransport {
 public:
  explicit ForwardingHttpTransport(HttpTransport* target) : target_(target) {}
  absl::StatusOr<HttpResponse> PostForm(const HttpRequest& request) override {
    return target_->PostForm(request);
  }

 private:
  HttpTransport* target_;
};

}  // namespace mailroom::testing

#endif  // MAILROOM_TESTS_TESTING_FAKE_HTTP_TRANSPORT_H_
