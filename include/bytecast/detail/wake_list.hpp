// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_WAKE_LIST_HPP
#define BYTECAST_DETAIL_WAKE_LIST_HPP

// Waking parked reads: the base of a read the writer can wake, and the list that posts the reads
// one write woke, one posted function per execution context.

#include <bytecast/detail/config.hpp>
#include <bytecast/detail/operation.hpp>

#include <atomic>
#include <type_traits>
#include <utility>

BYTECAST_NAMESPACE_BEGIN
namespace detail {

// A read operation as its queue and the wake-up machinery see it (read_op.hpp has the rest).
class read_op_base : public operation {
 public:
  // Asks the operation to complete with operation_aborted and take nothing. It sees the request
  // when it runs (the queue wakes it if it is parked). The release store pairs with the acquire
  // load in cancel_requested(), on whichever thread runs the operation.
  void request_cancel() noexcept { cancel_requested_.store(true, std::memory_order_release); }
  [[nodiscard]] bool cancel_requested() const noexcept { return cancel_requested_.load(std::memory_order_acquire); }

  // The execution context of the handler's executor, noted when the read parks (null if it
  // cannot be told): the reads of one context are woken together.
  [[nodiscard]] asio::execution_context* context() const noexcept { return context_; }

  // The next read of a wake-up chain; owned by whoever is about to post the chain (wake_list,
  // then chain_runner).
  read_op_base* next_wake = nullptr;

 protected:
  using operation::operation;
  ~read_op_base() = default;

  asio::execution_context* context_ = nullptr; // written before parking, under the queue's lock

 private:
  std::atomic<bool> cancel_requested_{false};
};

// Owns a chain of woken reads (linked by next_wake, all of one execution context) until it runs on
// that context. There it hands the second half of the chain to another thread of the context (one
// more post, so that two threads complete the reads of one write side by side) and completes the
// first half itself, each read dispatched to its own executor: on an io_context thread that runs
// it at once, with no trip through the scheduler's lock per read. Destroyed unrun (the context shut
// down with it queued), it frees them all, as the context's shutdown would have freed their own
// runners.
class chain_runner {
 public:
  explicit chain_runner(read_op_base* head) noexcept : head_(head) {}
  chain_runner(chain_runner&& other) noexcept : head_(std::exchange(other.head_, nullptr)) {}
  chain_runner& operator=(chain_runner&&) = delete;
  ~chain_runner() {
    while (head_ != nullptr) std::exchange(head_, head_->next_wake)->destroy();
  }
  void operator()() noexcept {
    split();
    while (head_ != nullptr) {
      read_op_base* op = std::exchange(head_, head_->next_wake);
      op->next_wake = nullptr;
      try {
        op->perform(operation::action::dispatch);
      } catch (...) {
        // Out of memory: the operation was freed with its handler, unrun.
      }
    }
  }

 private:
  // Posts the second half of the chain as a chain of its own (a chain of one stays whole).
  void split() noexcept {
    std::size_t n = 0;
    for (read_op_base* op = head_; op != nullptr; op = op->next_wake) ++n;
    if (n < 2) return;
    read_op_base* last_kept = head_;
    for (std::size_t i = 1; i < (n + 1) / 2; ++i) last_kept = last_kept->next_wake;
    read_op_base* second = std::exchange(last_kept->next_wake, nullptr);
    try {
      second->perform(operation::action::post_chain);
    } catch (...) {
      // Out of memory: the runner that failed to go out freed the second half.
    }
  }

  read_op_base* head_;
};

// The reads one write woke (each already taken out of its queue's parking place), posted once the
// write has reached every queue. A writer outside the readers' io_context sends the reads of that
// context as one posted function, so that a write waking many parked readers makes one trip into
// the scheduler, not one per stream. Otherwise (and for a read alone) each read is posted directly:
// a writer running on the readers' io_context posts cheaply, and its readers then run before
// whatever it posts next (its own write's completion, say).
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

  // Never throws. Posting allocates: when that fails the operations concerned are freed with
  // their handlers, unrun (the items they were woken for stay queued).
  void post_all() noexcept {
    while (head_ != nullptr) {
      read_op_base* first = split_first_context();
      if (first->next_wake != nullptr && first->perform(operation::action::outside)) {
        try {
          first->perform(operation::action::post_chain);
        } catch (...) {
          // The runner that failed to go out freed the chain.
        }
        continue;
      }
      while (first != nullptr) {
        read_op_base* op = std::exchange(first, first->next_wake);
        op->next_wake = nullptr;
        post_or_free(op);
      }
    }
  }

 private:
  // Unlinks and returns the reads of head_'s context, in order; the others stay for the next round.
  read_op_base* split_first_context() noexcept {
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
    return first;
  }

  read_op_base* head_ = nullptr;
  read_op_base* tail_ = nullptr;
};

// True if the calling thread does not run `ex`'s io_context; false when it does, or when that
// cannot be told. A writer thread posting into a context from outside contends with the context's
// threads for its queue, once per post: that is what a chain of wake-ups saves.
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

// Where a chain of wake-ups goes: the executor under a strand, so that the chain never waits
// behind the handlers of one reader's strand.
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

} // namespace detail
BYTECAST_NAMESPACE_END

#endif // BYTECAST_DETAIL_WAKE_LIST_HPP
