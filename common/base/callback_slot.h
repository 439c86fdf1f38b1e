// Provides CallbackSlot, a replaceable "something changed" callback: one component (an outbox,
// the PAN's reminders, the MnT's alarm manager) runs it to wake whoever waits on it (a
// delivery worker, a scheduler), and the waiter sets it when it starts and clears it before
// it goes away. Run() holds the slot's lock while the callback runs, so once Set(nullptr)
// has returned the old callback is neither running nor run again: the waiter may then be
// destroyed. The callback must therefore not use the same slot. Thread-safe.
#ifndef MAILROOM_COMMON_BASE_CALLBACK_SLOT_H_
#define MAILROOM_COMMON_BASE_CALLBACK_SLOT_H_

#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace mailroom {

class CallbackSlot {
 public:
  // Replaces the callback; nullptr (or an empty function) clears it. Waits for a Run() in
  // progress to finish.
  void Set(std::function<void()> callback);
  // Runs the callback, if one is set.
  void Run();

 private:
  absl::Mutex mu_;
  std::function<void()> callback_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_BASE_CALLBACK_SLOT_H_
