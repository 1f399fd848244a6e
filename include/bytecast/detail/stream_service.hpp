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
  enum class action { post, post_chain, defer, run, destroy, outside };

  // Posts the operation to its handler's executor; it runs there later.
  void post() { fn_(this, action::post); }
  // Posts one function to the context of this operation's executor (past any
  // strand) that owns this operation and the ones chained behind it
  // (`next_wake`, all of the same execution context) and defers each to its
  // own executor when it runs.
  void post_chain() { fn_(this, action::post_chain); }
  // Like post(), as a continuation of the running handler.
  void defer_run() { fn_(this, action::defer); }
  // True if the calling thread does not run the handler's io_context.
  [[nodiscard]] bool called_from_outside() { return fn_(this, action::outside); }
  // Completes the operation (on the handler's executor) and frees it.
  void run() { fn_(this, action::run); }
  // Frees the operation without invoking its handler (shutdown).
  void destroy() final { fn_(this, action::destroy); }

  // Asks the operation to complete with operation_aborted and take nothing.
  // Seen when it runs; the owning queue wakes it if it is parked.
  void request_cancel() noexcept { cancel_requested_.store(true, std::memory_order_release); }
  [[nodiscard]] bool cancel_requested() const noexcept { return cancel_requested_.load(std::memory_order_acquire); }

  // The execution context of the handler's executor, set when the read parks
  // (null if unknown): reads of one context can be woken together (see wake_list).
  [[nodiscard]] asio::execution_context* context() const noexcept { return context_; }

  bool scheduled = false; // guarded by the queue's mutex: a runner was posted (or is about to be)
  read_op_base* next_wake = nullptr; // owned by whoever is about to post it (wake_list, chain_runner)

 protected:
  using func_type = bool (*)(read_op_base*, action); // the result of action::outside, else false
  explicit read_op_base(func_type fn) noexcept : fn_(fn) {}
  ~read_op_base() = default;

  asio::execution_context* context_ = nullptr;

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

// Posts `op`. Posting allocates; if that fails, the runner that could not go
// out has freed the operation with its handler, unrun (an item it was woken
// for stays queued).
inline void post_or_free(read_op_base* op) noexcept {
  try {
    op->post();
  } catch (...) {
  }
}

// Owns a chain of woken reads (linked by next_wake, all of one execution
// context) until it runs on that context; there it defers each to its own
// executor, which costs no lock on an io_context. Destroyed unrun (the
// context shut down with it queued), it frees them all, as the context's
// shutdown would have freed their own runners.
class chain_runner {
 public:
  explicit chain_runner(read_op_base* head) noexcept : head_(head) {}
  chain_runner(chain_runner&& other) noexcept : head_(std::exchange(other.head_, nullptr)) {}
  chain_runner& operator=(chain_runner&&) = delete;
  ~chain_runner() {
    while (head_ != nullptr) std::exchange(head_, head_->next_wake)->destroy();
  }
  void operator()() noexcept {
    while (head_ != nullptr) {
      read_op_base* op = std::exchange(head_, head_->next_wake);
      op->next_wake = nullptr;
      try {
        op->defer_run();
      } catch (...) {
        // Out of memory: the operation was freed with its handler, unrun.
      }
    }
  }

 private:
  read_op_base* head_;
};

// The reads one write woke (each already marked scheduled under its queue's
// lock), posted once the write has reached every queue. A writer outside the
// readers' io_context sends the reads of that context as one posted function,
// so that a write waking many parked readers makes one trip into the
// scheduler, not one per stream; otherwise (and for a read alone) each read is
// posted directly.
class wake_list {
 public:
  wake_list() noexcept = default;
  wake_list(const wake_list&) = delete;
  wake_list& operator=(const wake_list&) = delete;
  ~wake_list() { post_all(); }

  void add(read_op_base* op) noexcept {
    op->next_wake = nullptr;
    if (tail_ != nullptr)
      tail_->next_wake = op;
    else
      head_ = op;
    tail_ = op;
  }

  // Never throws. Posting allocates: when that fails the operations concerned
  // are freed with their handlers, unrun.
  void post_all() noexcept {
    while (head_ != nullptr) {
      // Split off the reads of head_'s context; the others wait for the next round.
      read_op_base* first = head_;
      read_op_base* chain_tail = first;
      read_op_base* rest = nullptr;
      read_op_base* rest_tail = nullptr;
      for (read_op_base* op = first->next_wake; op != nullptr;) {
        read_op_base* next = op->next_wake;
        if (first->context() != nullptr && op->context() == first->context()) {
          chain_tail->next_wake = op;
          chain_tail = op;
        } else {
          if (rest_tail != nullptr)
            rest_tail->next_wake = op;
          else
            rest = op;
          rest_tail = op;
        }
        op = next;
      }
      chain_tail->next_wake = nullptr;
      if (rest_tail != nullptr) rest_tail->next_wake = nullptr;
      head_ = rest;
      tail_ = rest_tail;
      if (first->next_wake != nullptr && first->called_from_outside()) {
        try {
          first->post_chain();
        } catch (...) {
          // The runner that failed to go out freed the chain.
        }
        continue;
      }
      // One by one, in order: a writer running on the readers' io_context
      // posts cheaply, and its readers then run before whatever it posts next
      // (its own write's completion, say).
      while (first != nullptr) {
        read_op_base* op = std::exchange(first, first->next_wake);
        op->next_wake = nullptr;
        post_or_free(op);
      }
    }
  }

 private:
  read_op_base* head_ = nullptr;
  read_op_base* tail_ = nullptr;
};

// True if the calling thread does not run `ex`'s io_context (or thread
// pool); false when it does, or when that cannot be told. A writer thread
// posting into a context from outside contends with the context's threads for
// its queue, once per post: that is what a chain of wake-ups saves.
template <class Executor>
[[nodiscard]] bool called_from_outside(const Executor& ex) noexcept {
  using io_executor = asio::io_context::executor_type;
  if constexpr (requires { ex.get_inner_executor(); }) {
    return called_from_outside(ex.get_inner_executor()); // a strand: where its executor runs
  } else if constexpr (requires { ex.running_in_this_thread(); }) {
    return !ex.running_in_this_thread();
  } else if constexpr (std::is_same_v<Executor, asio::any_io_executor>) {
    if (const auto* e = ex.template target<io_executor>()) return !e->running_in_this_thread();
    if (const auto* s = ex.template target<asio::strand<io_executor>>())
      return !s->get_inner_executor().running_in_this_thread();
    return false;
  } else {
    return false;
  }
}

// Where a chain of wake-ups goes: the executor under a strand, so that the
// chain never waits behind the handlers of one reader's strand.
template <class Executor>
[[nodiscard]] auto chain_executor(const Executor& ex) {
  if constexpr (requires { ex.get_inner_executor(); }) {
    return chain_executor(ex.get_inner_executor());
  } else if constexpr (std::is_same_v<Executor, asio::any_io_executor>) {
    using io_executor = asio::io_context::executor_type;
    if (const auto* s = ex.template target<asio::strand<io_executor>>())
      return asio::any_io_executor(s->get_inner_executor());
    return ex;
  } else {
    return ex;
  }
}

// `ex`'s execution context, or null if it cannot be asked.
template <class Executor>
[[nodiscard]] asio::execution_context* context_key(const Executor& ex) noexcept {
  if constexpr (asio::can_query<const Executor&, asio::execution::context_t>::value) {
    try {
      return &asio::query(ex, asio::execution::context);
    } catch (...) {
      return nullptr; // e.g. an empty any_io_executor
    }
  } else {
    return nullptr;
  }
}

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
