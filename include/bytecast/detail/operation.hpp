// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_OPERATION_HPP
#define BYTECAST_DETAIL_OPERATION_HPP

// The operation toolkit: the base of every operation bytecast parks or posts, and the one way to
// allocate one, track its work, filter its cancellations and post it.

#include <bytecast/detail/config.hpp>

#include <memory>
#include <new>
#include <type_traits>
#include <utility>

BYTECAST_NAMESPACE_BEGIN
namespace detail {

// An operation that bytecast parks (a read waiting for data, a write waiting for room, a wait for
// streams) or posts. One function pointer, set by the concrete type, does what a vtable would.
class operation {
 public:
  enum class action {
    run,          // complete now (we are on the handler's executor) and free the operation
    destroy,      // free the operation without invoking its handler
    post,         // post `run` to the handler's executor
    defer,        // the same, as a continuation of the running handler
    dispatch,     // run now if the calling thread may run the handler's executor, else post
    post_chain,   // reads: post this read and the ones chained behind it (see wake_list)
    prepare_park, // reads: about to wait: count as outstanding work, note the execution context
    outside,      // reads: true if the calling thread does not run the handler's context
  };

  operation(const operation&) = delete;
  operation& operator=(const operation&) = delete;

  void run() { fn_(this, action::run); }
  void destroy() noexcept { fn_(this, action::destroy); }
  void post() { fn_(this, action::post); }
  void defer() { fn_(this, action::defer); }
  // The actions above and the read-only ones; returns what `outside` asks, else false.
  bool perform(action a) { return fn_(this, a); }

 protected:
  using func_type = bool (*)(operation*, action);
  explicit operation(func_type fn) noexcept : fn_(fn) {}
  ~operation() = default;

 private:
  func_type fn_;
};

// Owns a posted operation until it runs. Destroyed unrun (its executor shut down with it still
// queued), it frees the operation: nothing leaks.
template <class Op = operation>
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

// Posts `op`. Posting allocates; if that fails, the runner that could not go out has freed the
// operation with its handler, unrun.
inline void post_or_free(operation* op) noexcept {
  try {
    op->post();
  } catch (...) {
  }
}

// --- Allocation: the handler's associated allocator (Asio's recycling allocator by default, so
// that a loop of reads reuses one block), as Asio's own operations do. ---

template <class T, class Handler>
using handler_allocator_t = typename std::allocator_traits<
    asio::associated_allocator_t<Handler, asio::recycling_allocator<void>>>::template rebind_alloc<T>;

template <class T, class Handler>
[[nodiscard]] handler_allocator_t<T, Handler> handler_allocator(const Handler& handler) noexcept {
  return handler_allocator_t<T, Handler>(asio::get_associated_allocator(handler, asio::recycling_allocator<void>()));
}

// Allocates an Op with its handler's allocator and constructs it from the handler and `args`. If
// the constructor throws, the memory goes back and the exception propagates.
template <class Op, class Handler, class... Args>
[[nodiscard]] Op* new_op(Handler&& handler, Args&&... args) {
  auto alloc = handler_allocator<Op>(handler);
  using traits = std::allocator_traits<decltype(alloc)>;
  Op* p = traits::allocate(alloc, 1);
  try {
    return ::new (static_cast<void*>(p)) Op(std::move(handler), std::forward<Args>(args)...);
  } catch (...) {
    traits::deallocate(alloc, p, 1);
    throw;
  }
}

// Destroys `op` (made by new_op) and gives its memory back, returning the handler it held (moved
// out of `handler`, a member of *op). The memory is free before the handler runs, so the next
// operation of a loop can reuse it, or is destroyed, since the handler may own the allocator.
template <class Op, class Handler>
[[nodiscard]] Handler delete_op(Op* op, Handler& handler) {
  auto alloc = handler_allocator<Op>(handler);
  Handler moved(std::move(handler));
  op->~Op();
  std::allocator_traits<decltype(alloc)>::deallocate(alloc, op, 1);
  return moved;
}

// --- Executors and cancellation. ---

// The executor a handler completes on: its associated executor, else the I/O object's.
template <class Handler, class IoExecutor>
using handler_executor_t = asio::associated_executor_t<Handler, IoExecutor>;

// An executor that counts as outstanding work while it lives (a pending operation keeps
// `io_context::run()` going), and how to make one.
template <class Executor>
using tracked_executor_t = std::decay_t<decltype(asio::prefer(std::declval<const Executor&>(),
                                                              asio::execution::outstanding_work.tracked))>;

template <class Executor>
[[nodiscard]] tracked_executor_t<Executor> track_work(const Executor& ex) {
  return asio::prefer(ex, asio::execution::outstanding_work.tracked);
}

// The cancellation types bytecast's operations support: all three, since every one of them can
// be withdrawn without side effects.
[[nodiscard]] constexpr bool is_cancellation(asio::cancellation_type_t type) noexcept {
  return (type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                  asio::cancellation_type::total)) != asio::cancellation_type::none;
}

// A cancellation slot handler: calls `cancel()` for the supported cancellation types.
template <class Cancel>
struct cancellation_handler {
  explicit cancellation_handler(Cancel c) noexcept(std::is_nothrow_move_constructible_v<Cancel>)
      : cancel(std::move(c)) {}
  void operator()(asio::cancellation_type_t type) {
    if (is_cancellation(type)) cancel();
  }
  Cancel cancel;
};

// Installs `cancel` in `slot` (if connected) and remembers the slot in `op_slot`, to be cleared
// when the operation completes. Strong: if installing throws, `op_slot` stays disconnected.
template <class Cancel>
void install_cancellation(asio::cancellation_slot slot, asio::cancellation_slot& op_slot, Cancel cancel) {
  if (!slot.is_connected()) return;
  slot.template emplace<cancellation_handler<Cancel>>(std::move(cancel));
  op_slot = slot;
}

} // namespace detail
BYTECAST_NAMESPACE_END

#endif // BYTECAST_DETAIL_OPERATION_HPP
