#include "vector/rw_mutex.h"

namespace isartor::vector {

void RwMutex::lock() {
  std::unique_lock lock(mutex_);
  ++writers_waiting_;
  writers_cv_.wait(lock, [this] { return !writer_ && readers_ == 0; });
  --writers_waiting_;
  writer_ = true;
}

void RwMutex::unlock() {
  bool writer_next;
  {
    std::lock_guard lock(mutex_);
    writer_ = false;
    writer_next = writers_waiting_ > 0;
  }
  // Readers would only re-block while a writer waits, so wake just the side that can enter.
  if (writer_next) {
    writers_cv_.notify_one();
  } else {
    readers_cv_.notify_all();
  }
}

void RwMutex::lock_shared() {
  std::unique_lock lock(mutex_);
  readers_cv_.wait(lock, [this] { return !writer_ && writers_waiting_ == 0; });
  ++readers_;
}

void RwMutex::unlock_shared() {
  bool wake_writer;
  {
    std::lock_guard lock(mutex_);
    wake_writer = --readers_ == 0 && writers_waiting_ > 0;
  }
  if (wake_writer) writers_cv_.notify_one();
}

}  // namespace isartor::vector
