// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_STREAM_SERVICE_HPP
#define BYTECAST_DETAIL_STREAM_SERVICE_HPP

#include <bytecast/detail/config.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace bytecast::detail {

// A read operation waiting on (or scheduled for) one stream. The concrete type
// (see reader_queue.hpp) knows the handler; this base is what the queue, the
// writer and the service need to see.
class read_op_base {
 public:
  enum class action { post, run, destroy };

  // Posts the operation to its handler's executor; it runs there later.
  void post() { fn_(this, action::post); }
  // Completes the operation (on the handler's executor) and frees it.
  void run() { fn_(this, action::run); }
  // Frees the operation without invoking its handler (shutdown).
  void destroy() { fn_(this, action::destroy); }

  // Both guarded by the owning queue's mutex.
  bool scheduled = false; // a runner was posted (or is about to be)
  bool cancelled = false; // complete with operation_aborted, take nothing

 protected:
  using func_type = void (*)(read_op_base*, action);
  explicit read_op_base(func_type fn) noexcept : fn_(fn) {}
  ~read_op_base() = default;

 private:
  func_type fn_;
};

// Owns a scheduled operation until it runs. Destroyed unrun (its executor shut
// down with the runner still queued), it frees the operation: nothing leaks.
class op_runner {
 public:
  explicit op_runner(read_op_base* op) noexcept : op_(op) {}
  op_runner(op_runner&& other) noexcept : op_(std::exchange(other.op_, nullptr)) {}
  op_runner& operator=(op_runner&&) = delete;
  ~op_runner() {
    if (op_ != nullptr) op_->destroy();
  }
  void operator()() { std::exchange(op_, nullptr)->run(); }

 private:
  read_op_base* op_;
};

// Every queue whose executor belongs to one execution context. Shared by the
// context's service and the queues, so that a queue outliving its context (a
// stream kept after the io_context was destroyed) still unregisters safely.
class queue_registry;

// The part of a stream's queue that the service and the operations share.
class queue_base {
 public:
  queue_base(const queue_base&) = delete;
  queue_base& operator=(const queue_base&) = delete;

  // Asks the pending operation `op` to complete with operation_aborted. Whether
  // it is still waiting or already scheduled, it completes on its own executor
  // and takes nothing from the queue.
  void cancel(read_op_base* op) {
    bool post = false;
    {
      std::lock_guard lock(mutex_);
      if (op_ != op) return; // already completed
      op->cancelled = true;
      post = !std::exchange(op->scheduled, true);
    }
    if (post) op->post();
  }

  // True once the stream handle is gone or the writer cut the stream off: the
  // writer stops counting and feeding it.
  [[nodiscard]] bool dead() const noexcept { return dead_.load(std::memory_order_acquire); }

  mutable std::mutex mutex_;
  read_op_base* op_ = nullptr; // guarded by mutex_: the outstanding read, if any

 protected:
  explicit queue_base(std::shared_ptr<queue_registry> registry);
  ~queue_base();

  // Called with mutex_ held: marks the pending operation for running and
  // returns it if the caller must post it (after unlocking).
  [[nodiscard]] read_op_base* wake_locked() noexcept {
    if (op_ == nullptr || op_->scheduled) return nullptr;
    op_->scheduled = true;
    return op_;
  }

  std::atomic<bool> dead_{false};

 private:
  friend class queue_registry;
  std::shared_ptr<queue_registry> registry_;
  queue_base* prev_ = nullptr; // guarded by the registry's mutex
  queue_base* next_ = nullptr; // guarded by the registry's mutex
};

class queue_registry {
 public:
  void add(queue_base* q) {
    std::lock_guard lock(mutex_);
    if (shut_down_) return;
    q->next_ = head_;
    if (head_ != nullptr) head_->prev_ = q;
    head_ = q;
  }

  void remove(queue_base* q) noexcept {
    std::lock_guard lock(mutex_);
    if (q->prev_ != nullptr) q->prev_->next_ = q->next_;
    if (q->next_ != nullptr) q->next_->prev_ = q->prev_;
    if (head_ == q) head_ = q->next_;
    q->prev_ = q->next_ = nullptr;
  }

  // Scheduled operations sit in the executor's queue, which destroys them
  // itself. Waiting ones are taken here and destroyed after every lock is
  // released: destroying a handler may destroy streams and queues.
  void shutdown() {
    std::vector<read_op_base*> waiting;
    {
      std::lock_guard lock(mutex_);
      shut_down_ = true;
      while (head_ != nullptr) {
        queue_base* q = std::exchange(head_, head_->next_);
        q->prev_ = q->next_ = nullptr;
        std::lock_guard qlock(q->mutex_);
        if (q->op_ != nullptr && !q->op_->scheduled) waiting.push_back(std::exchange(q->op_, nullptr));
      }
    }
    for (read_op_base* op : waiting) op->destroy();
  }

 private:
  std::mutex mutex_;
  queue_base* head_ = nullptr; // guarded by mutex_: every registered queue
  bool shut_down_ = false;     // guarded by mutex_
};

// One per execution context, as Asio's own I/O objects have: when the context
// shuts down it destroys the handlers of reads still waiting on a stream, so a
// stream whose io_context is destroyed first neither leaks nor touches it later.
class stream_service : public asio::execution_context::service {
 public:
  using key_type = stream_service;
  inline static asio::execution_context::id id;

  explicit stream_service(asio::execution_context& ctx)
      : asio::execution_context::service(ctx), registry_(std::make_shared<queue_registry>()) {}

  [[nodiscard]] const std::shared_ptr<queue_registry>& registry() const noexcept { return registry_; }

 private:
  void shutdown() override { registry_->shutdown(); }

  std::shared_ptr<queue_registry> registry_;
};

inline queue_base::queue_base(std::shared_ptr<queue_registry> registry) : registry_(std::move(registry)) {
  if (registry_) registry_->add(this);
}

inline queue_base::~queue_base() {
  if (registry_) registry_->remove(this);
}

// The service of the context that runs `ex`.
template <class Executor>
[[nodiscard]] std::shared_ptr<queue_registry> registry_for(const Executor& ex) {
  return asio::use_service<stream_service>(asio::query(ex, asio::execution::context)).registry();
}

} // namespace bytecast::detail

#endif // BYTECAST_DETAIL_STREAM_SERVICE_HPP
