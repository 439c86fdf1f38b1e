#include "common/sqlite/wal_checkpointer.h"

#include <sqlite3.h>

#include <utility>

#include "common/base/logging.h"

namespace mailroom::sqlite {
namespace {

constexpr int kMaxPasses = 4;
constexpr int kTailFrames = 50;

}  // namespace

WalCheckpointer::WalCheckpointer(Database* main, std::unique_ptr<Database> own,
                                 std::string log_component)
    : main_(main), own_(std::move(own)), log_component_(std::move(log_component)) {
  sqlite3_wal_hook(main_->raw(), &WalCheckpointer::OnWalCommit, this);
  thread_ = std::thread([this] { Loop(); });
}

WalCheckpointer::~WalCheckpointer() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
  own_.reset();
  sqlite3_wal_hook(main_->raw(), nullptr, nullptr);
}

int WalCheckpointer::OnWalCommit(void* self, sqlite3* db, const char* name, int frames) {
  auto* checkpointer = static_cast<WalCheckpointer*>(self);
  if (frames < kCheckpointFrames) return SQLITE_OK;
  bool inline_checkpoint = frames >= kInlineCheckpointFrames;
  {
    absl::MutexLock lock(&checkpointer->mu_);
    switch (checkpointer->phase_) {
      case Phase::kIdle:
        checkpointer->phase_ = Phase::kRequested;
        break;
      case Phase::kRequested:
        break;
      case Phase::kCopied:
        inline_checkpoint = true;
        break;
    }
    if (inline_checkpoint) checkpointer->phase_ = Phase::kIdle;
  }
  if (inline_checkpoint) {
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  }
  return SQLITE_OK;
}

void WalCheckpointer::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &WalCheckpointer::Wanted));
      if (stopping_) return;
    }
    // Passes until the frames committed during a pass are few, so that the commit that
    // completes the checkpoint has little left to copy.
    int previous_frames = 0;
    for (int pass = 0; pass < kMaxPasses; ++pass) {
      int wal_frames = 0;
      int copied = 0;
      const int rc = sqlite3_wal_checkpoint_v2(own_->raw(), "main", SQLITE_CHECKPOINT_PASSIVE,
                                               &wal_frames, &copied);
      if (rc != SQLITE_OK) {
        if ((rc & 0xff) != SQLITE_BUSY) {
          MR_LOG(kWarn, log_component_) << own_->Error(rc, "checkpoint").message();
        }
        break;
      }
      if (pass > 0 && wal_frames - previous_frames <= kTailFrames) break;
      previous_frames = wal_frames;
    }
    absl::MutexLock lock(&mu_);
    if (phase_ == Phase::kRequested) phase_ = Phase::kCopied;
  }
}

}  // namespace mailroom::sqlite
