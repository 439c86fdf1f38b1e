// Provides GroupCommit, leader-based group commit: callers that arrive while a commit is in
// progress queue their requests; the first of them to find no leader becomes the leader,
// takes every queued request and runs them together (one transaction, one fsync), then hands
// leadership on to a waiting caller whose request came too late for its group. Every caller
// returns only after the group that holds its request has run.
//
// Thread-safe. Header-only.
#ifndef MAILROOM_COMMON_OUTBOX_GROUP_COMMIT_H_
#define MAILROOM_COMMON_OUTBOX_GROUP_COMMIT_H_

#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"

namespace mailroom {

template <typename Request>
class GroupCommit {
 public:
  // Queues `request` and returns once a leader has run it: a leader (this caller or another)
  // called run_group with a group holding it. run_group stores each request's outcome in the
  // request itself; the caller reads it from there after Submit returns.
  void Submit(Request* request, absl::FunctionRef<void(const std::vector<Request*>&)> run_group) {
    bool done = false;
    {
      absl::MutexLock lock(&mu_);
      queue_.push_back({request, &done});
      auto done_or_leaderless = [this, &done]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return done || !leader_;
      };
      mu_.Await(absl::Condition(&done_or_leaderless));
      if (done) return;
      leader_ = true;
    }
    std::vector<Waiter> group;
    {
      absl::MutexLock lock(&mu_);
      group.swap(queue_);
    }
    std::vector<Request*> requests;
    requests.reserve(group.size());
    for (const Waiter& w : group) requests.push_back(w.request);
    run_group(requests);
    absl::MutexLock lock(&mu_);
    for (const Waiter& w : group) *w.done = true;
    leader_ = false;
  }

 private:
  struct Waiter {
    Request* request;
    bool* done;  // the waiting caller's flag, guarded by mu_
  };

  absl::Mutex mu_;
  std::vector<Waiter> queue_ ABSL_GUARDED_BY(mu_);
  bool leader_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_OUTBOX_GROUP_COMMIT_H_
