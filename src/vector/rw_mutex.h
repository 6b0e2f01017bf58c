#pragma once
// A reader/writer lock that lets a waiting writer in before new readers.
#include <condition_variable>
#include <mutex>

namespace isartor::vector {

// Meets the standard SharedMutex requirements (lock/unlock, lock_shared/unlock_shared), so it
// works with std::unique_lock, std::shared_lock and std::condition_variable_any.
// std::shared_mutex on glibc prefers readers: under a steady stream of overlapping searches an
// upsert or remove can wait forever. Here, once a writer waits, new readers queue behind it.
// Not recursive: a thread holding a shared lock must not take it again (it could deadlock
// behind a waiting writer).
class RwMutex {
 public:
  void lock();
  void unlock();
  void lock_shared();
  void unlock_shared();

 private:
  std::mutex mutex_;
  std::condition_variable readers_cv_;
  std::condition_variable writers_cv_;
  int readers_ = 0;          // holding the shared lock
  int writers_waiting_ = 0;  // blocked in lock()
  bool writer_ = false;      // holding the exclusive lock
};

}  // namespace isartor::vector
