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

// An operation parked inside bytecast (a read waiting for data, a write waiting
// for room) that an execution context shutdown must free without running it.
class pending_operation {
 public:
  virtual void destroy() = 0;

 protected:
  pending_operation() = default;
  ~pending_operation() = default;
};

// A read operation waiting on (or scheduled for) one stream. The concrete type
// (see reader_queue.hpp) knows the handler; this base is what the queue, the
// writer and the service need to see.
class read_op_base : public pending_operation {
 public:
  enum class action { post, run, destroy };

  // Posts the operation to its handler's executor; it runs there later.
  void post() { fn_(this, action::post); }
  // Completes the operation (on the handler's executor) and frees it.
  void run() { fn_(this, action::run); }
  // Frees the operation without invoking its handler (shutdown).
  void destroy() final { fn_(this, action::destroy); }

  // Asks the operation to complete with operation_aborted and take nothing.
  // Seen when it runs; the owning queue wakes it if it is parked.
  void request_cancel() noexcept { cancel_requested_.store(true, std::memory_order_release); }
  [[nodiscard]] bool cancel_requested() const noexcept { return cancel_requested_.load(std::memory_order_acquire); }

  bool scheduled = false; // guarded by the queue's mutex: a runner was posted (or is about to be)

 protected:
  using func_type = void (*)(read_op_base*, action);
  explicit read_op_base(func_type fn) noexcept : fn_(fn) {}
  ~read_op_base() = default;

 private:
  func_type fn_;
  std::atomic<bool> cancel_requested_{false};
};

// Owns a posted operation until it runs. Destroyed unrun (its executor shut
// down with the runner still queued), it frees the operation: nothing leaks.
template <class Op>
class op_runner {
 public:
  explicit op_runner(Op* op) noexcept : op_(op) {}
  op_runner(op_runner&& other) noexcept : op_(std::exchange(other.op_, nullptr)) {}
  op_runner& operator=(op_runner&&) = delete;
  ~op_runner() {
    if (op_ != nullptr) op_->destroy();
  }
  void operator()() { std::exchange(op_, nullptr)->run(); }

 private:
  Op* op_;
};

class op_registry;

// Something that parks operations: a stream's queue, a bounded writer. It is
// listed in its execution context's registry for as long as it lives.
class registry_node {
 public:
  registry_node(const registry_node&) = delete;
  registry_node& operator=(const registry_node&) = delete;

  // Called at shutdown with the registry's lock held: hands every parked
  // operation (one whose handler is not queued on an executor) to `out`.
  virtual void take_parked(std::vector<pending_operation*>& out) = 0;

 protected:
  explicit registry_node(std::shared_ptr<op_registry> registry);
  ~registry_node() = default;
  // Every derived destructor calls this first, so that a shutdown never sees a
  // half-destroyed node.
  void unregister() noexcept;

 private:
  friend class op_registry;
  std::shared_ptr<op_registry> registry_;
  registry_node* prev_ = nullptr; // guarded by the registry's mutex
  registry_node* next_ = nullptr; // guarded by the registry's mutex
};

// Every node whose executor belongs to one execution context. Shared by the
// context's service and the nodes, so that a node outliving its context (a
// stream kept after the io_context was destroyed) still unregisters safely.
class op_registry {
 public:
  void add(registry_node* n) {
    std::lock_guard lock(mutex_);
    if (shut_down_) return;
    n->next_ = head_;
    if (head_ != nullptr) head_->prev_ = n;
    head_ = n;
  }

  void remove(registry_node* n) noexcept {
    std::lock_guard lock(mutex_);
    if (n->prev_ != nullptr) n->prev_->next_ = n->next_;
    if (n->next_ != nullptr) n->next_->prev_ = n->prev_;
    if (head_ == n) head_ = n->next_;
    n->prev_ = n->next_ = nullptr;
  }

  // Parked operations are destroyed after every lock is released: destroying
  // a handler may destroy streams, writers and so nodes. Operations already
  // posted sit in the executor's queue, which destroys them itself.
  void shutdown() {
    std::vector<pending_operation*> parked;
    {
      std::lock_guard lock(mutex_);
      shut_down_ = true;
      while (head_ != nullptr) {
        registry_node* n = std::exchange(head_, head_->next_);
        n->prev_ = n->next_ = nullptr;
        n->take_parked(parked);
      }
    }
    for (pending_operation* op : parked) op->destroy();
  }

 private:
  std::mutex mutex_;
  registry_node* head_ = nullptr; // guarded by mutex_
  bool shut_down_ = false;        // guarded by mutex_
};

inline registry_node::registry_node(std::shared_ptr<op_registry> registry) : registry_(std::move(registry)) {
  if (registry_) registry_->add(this);
}

inline void registry_node::unregister() noexcept {
  if (registry_) registry_->remove(this);
}

// The part of a stream's queue that the operations share.
class queue_base : public registry_node {
 public:
  // Asks the outstanding operation `op` to complete with operation_aborted.
  // Whether it is parked or already posted, it completes on its own executor
  // and takes nothing from the queue.
  void cancel(read_op_base* op) {
    op->request_cancel();
    bool post = false;
    {
      std::lock_guard lock(mutex_);
      post = op_ == op && !std::exchange(op->scheduled, true); // parked: wake it
    }
    if (post) op->post();
  }

  // True once the stream handle is gone or the writer cut the stream off: the
  // writer stops counting and feeding it.
  [[nodiscard]] bool dead() const noexcept { return dead_.load(std::memory_order_acquire); }

  // True once the stream handle is gone: a read still outstanding is aborted.
  [[nodiscard]] bool detached() const noexcept { return detached_.load(std::memory_order_acquire); }

  void take_parked(std::vector<pending_operation*>& out) final {
    std::lock_guard lock(mutex_);
    if (op_ != nullptr && !op_->scheduled) out.push_back(std::exchange(op_, nullptr));
  }

  mutable std::mutex mutex_;
  read_op_base* op_ = nullptr; // guarded by mutex_: the outstanding read, if any

 protected:
  using registry_node::registry_node;
  ~queue_base() = default;

  // Called with mutex_ held: marks the pending operation for running and
  // returns it if the caller must post it (after unlocking).
  [[nodiscard]] read_op_base* wake_locked() noexcept {
    if (op_ == nullptr || op_->scheduled) return nullptr;
    op_->scheduled = true;
    return op_;
  }

  std::atomic<bool> dead_{false};
  std::atomic<bool> detached_{false};
};

// One per execution context, as Asio's own I/O objects have: when the context
// shuts down it destroys the handlers of operations parked in bytecast, so a
// stream or writer whose io_context is destroyed first neither leaks nor
// touches it later.
class stream_service : public asio::execution_context::service {
 public:
  using key_type = stream_service;
  inline static asio::execution_context::id id;

  explicit stream_service(asio::execution_context& ctx)
      : asio::execution_context::service(ctx), registry_(std::make_shared<op_registry>()) {}

  [[nodiscard]] const std::shared_ptr<op_registry>& registry() const noexcept { return registry_; }

 private:
  void shutdown() override { registry_->shutdown(); }

  std::shared_ptr<op_registry> registry_;
};

// The registry of the context that runs `ex`.
template <class Executor>
[[nodiscard]] std::shared_ptr<op_registry> registry_for(const Executor& ex) {
  return asio::use_service<stream_service>(asio::query(ex, asio::execution::context)).registry();
}

} // namespace bytecast::detail

#endif // BYTECAST_DETAIL_STREAM_SERVICE_HPP
