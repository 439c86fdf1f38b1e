#include "common/base/background_loop.h"

#include <utility>

namespace mailroom {

BackgroundLoop::BackgroundLoop(const Clock* clock, Step step)
    : BackgroundLoop(clock, std::move(step), Options()) {}

BackgroundLoop::BackgroundLoop(const Clock* clock, Step step, Options options)
    : clock_(clock), step_(std::move(step)), options_(options) {}

BackgroundLoop::~BackgroundLoop() { Stop(); }

void BackgroundLoop::Start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void BackgroundLoop::Stop() {
  std::thread thread;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    thread = std::move(thread_);
  }
  if (thread.joinable()) thread.join();
}

void BackgroundLoop::Wake() {
  absl::MutexLock lock(&mu_);
  ++wake_generation_;
}

int64_t BackgroundLoop::steps() const {
  absl::MutexLock lock(&mu_);
  return steps_;
}

bool BackgroundLoop::AwaitSteps(int64_t n, absl::Duration timeout) const {
  struct Want {
    const BackgroundLoop* self;
    int64_t n;
  } want{this, n};
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(
                                  +[](Want* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                    return w->self->steps_ >= w->n;
                                  },
                                  &want),
                              timeout);
}

void BackgroundLoop::Run() {
  absl::MutexLock lock(&mu_);
  int64_t generation = wake_generation_;
  absl::Time due = options_.first_delay > absl::ZeroDuration()
                       ? clock_->Now() + options_.first_delay
                       : absl::InfinitePast();
  while (true) {
    struct Wake {
      BackgroundLoop* self;
      int64_t generation;
    } wake{this, generation};
    const absl::Condition woken(
        +[](Wake* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return w->self->stopping_ || w->self->wake_generation_ != w->generation;
        },
        &wake);
    if (due > clock_->Now() && !woken.Eval()) clock_->AwaitWithDeadline(&mu_, woken, due);
    if (stopping_) return;
    // Taken before the step, so a Wake() during the step makes the next wait return at once.
    generation = wake_generation_;
    mu_.Unlock();
    due = step_();
    mu_.Lock();
    ++steps_;
  }
}

}  // namespace mailroom
