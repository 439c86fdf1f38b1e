#include "common/base/callback_slot.h"

#include <utility>

namespace mailroom {

void CallbackSlot::Set(std::function<void()> callback) {
  absl::MutexLock lock(&mu_);
  callback_ = std::move(callback);
}

void CallbackSlot::Run() {
  absl::MutexLock lock(&mu_);
  if (callback_) callback_();
}

}  // namespace mailroom
