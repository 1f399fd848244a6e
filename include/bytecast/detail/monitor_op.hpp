// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_MONITOR_OP_HPP
#define BYTECAST_DETAIL_MONITOR_OP_HPP

// One read of a stalled_monitor: the inner read raced by a timeout, paced by a throttle.

#include <bytecast/detail/config.hpp>
#include <bytecast/detail/operation.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <optional>
#include <type_traits>
#include <utility>

BYTECAST_NAMESPACE_BEGIN
namespace detail {

// What a stalled_monitor's reads share: the stream, the settings, when the last item went out, and
// an item that a cancelled read had already received. Touched by one read at a time (on its
// strand, or where its handler completes).
template <class Stream, class Value>
struct monitor_state {
  using clock = std::chrono::steady_clock;
  explicit monitor_state(Stream s) noexcept(std::is_nothrow_move_constructible_v<Stream>) : stream(std::move(s)) {}
  Stream stream;
  clock::duration timeout = clock::duration::zero();
  clock::duration throttle = clock::duration::zero();
  std::optional<clock::time_point> last_delivery;
  std::optional<std::pair<error_code, Value>> stash;
};

// One monitored read. Its steps (the first step, the inner read's completion, the timer's, a
// cancellation) run on the read's own strand, so they never race each other; the result then goes
// to the handler's executor. The strand and the timer belong to the read, not to the monitor: when
// the execution context is destroyed with a read pending, they go with the read's handlers while
// the context's services still exist, and a monitor that outlives its context holds no I/O object.
//
// The operation is allocated with the handler's allocator, and so is every intermediate handler it
// gives to the inner stream, the timer and the executors. Each such handler holds a counted
// reference; the last one frees the operation.
template <class State, class Handler>
class monitor_op {
  using stream_type = std::remove_cvref_t<decltype(std::declval<State&>().stream)>;
  using value_type = typename std::remove_cvref_t<decltype(*std::declval<State&>().stash)>::second_type;
  using clock = typename State::clock;
  using stream_executor = typename stream_type::executor_type;
  using strand_type = asio::strand<stream_executor>;
  using timer_type = asio::basic_waitable_timer<clock, asio::wait_traits<clock>, strand_type>;
  using handler_executor = handler_executor_t<Handler, stream_executor>;

 public:
  monitor_op(Handler&& handler, State* state)
      : state_(state),
        strand_(asio::make_strand(state->stream.get_executor())),
        timer_(strand_),
        handler_(std::move(handler)),
        work_(track_work(asio::get_associated_executor(handler_, state->stream.get_executor()))),
        alloc_(handler_allocator<monitor_op>(handler_)) {}

  // Starts a read of `state`. Strong: if allocating anything throws, nothing was read and the
  // handler is not called.
  static void start(Handler&& handler, State* state) {
    auto slot = asio::get_associated_cancellation_slot(handler);
    ref self(new_op<monitor_op>(std::move(handler), state)); // frees it if what follows throws
    if (slot.is_connected()) {
      slot.template emplace<cancel_forwarder>(cancel_forwarder{self});
      self->slot_ = slot;
    }
    asio::post(self->strand_, on_strand<&monitor_op::begin>{self});
  }

 private:
  // A counted reference to the operation. The increments are relaxed (a reference is made from one
  // that exists); the acq_rel decrement orders every step's last use before the free.
  class ref {
   public:
    explicit ref(monitor_op* op) noexcept : op_(op) {} // adopts one count
    ref(const ref& other) noexcept : op_(other.op_) { op_->refs_.fetch_add(1, std::memory_order_relaxed); }
    ref(ref&& other) noexcept : op_(std::exchange(other.op_, nullptr)) {}
    ref& operator=(const ref&) = delete;
    ~ref() {
      if (op_ != nullptr && op_->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) op_->free();
    }
    [[nodiscard]] monitor_op* get() const noexcept { return op_; }
    monitor_op* operator->() const noexcept { return op_; }

   private:
    monitor_op* op_;
  };

  // A step of the read: runs `Step` on the read's strand, with the handler's allocator.
  template <auto Step>
  struct on_strand {
    ref self;
    using executor_type = strand_type;
    [[nodiscard]] executor_type get_executor() const noexcept { return self->strand_; }
    using allocator_type = handler_allocator_t<void, Handler>;
    [[nodiscard]] allocator_type get_allocator() const noexcept { return allocator_type(self->alloc_); }
    template <class... Args>
    void operator()(Args&&... args) {
      (self.get()->*Step)(std::forward<Args>(args)...);
    }
  };

  // The caller's cancellation, on the caller's side: noted at once, so that a result that reaches
  // the handler after this point is kept for the next call rather than handed to a caller that has
  // moved on (as `||` does with the loser's result); the rest runs on the strand.
  struct cancel_forwarder {
    ref self;
    void operator()(asio::cancellation_type_t type) {
      if (!is_cancellation(type)) return;
      self->cancel_type_.store(type, std::memory_order_relaxed); // the dispatch below publishes it
      self->cancel_requested_.store(true, std::memory_order_release);
      asio::dispatch(self->strand_, on_strand<&monitor_op::on_cancel>{self});
    }
  };

  // The completion, on the handler's executor, with the handler's allocator. It lets its reference
  // go before calling the handler, so that the memory can be reused by the next read of a loop.
  struct complete_step {
    ref self;
    using allocator_type = handler_allocator_t<void, Handler>;
    [[nodiscard]] allocator_type get_allocator() const noexcept { return allocator_type(self->alloc_); }
    void operator()() {
      auto done = self->take_result();
      { ref last(std::move(self)); }
      std::move(done.handler)(done.ec, std::move(done.value));
    }
  };

  struct result {
    Handler handler;
    tracked_executor_t<handler_executor> work; // until the handler returned
    error_code ec;
    value_type value;
  };

  // A new reference, from a step that holds one.
  [[nodiscard]] ref new_ref() noexcept {
    refs_.fetch_add(1, std::memory_order_relaxed);
    return ref(this);
  }

  void begin() {
    if (cancelled_) return finish(asio::error::operation_aborted, value_type{});
    auto& m = *state_;
    if (throttle_pending()) return pause();
    if (m.stash) {
      // An item that a cancelled read had already received comes first.
      auto [ec, v] = std::move(*m.stash);
      m.stash.reset();
      return finish(ec, std::move(v));
    }
    read();
  }

  [[nodiscard]] bool throttle_pending() const {
    const auto& m = *state_;
    return m.throttle > clock::duration::zero() && m.last_delivery && clock::now() < *m.last_delivery + m.throttle;
  }

  void pause() {
    timer_.expires_at(*state_->last_delivery + state_->throttle);
    timer_pending_ = true;
    timer_.async_wait(on_strand<&monitor_op::after_pause>{new_ref()});
  }

  void after_pause(error_code) {
    timer_pending_ = false;
    begin();
  }

  void read() {
    auto& m = *state_;
    inner_pending_ = true;
    m.stream.async_next(asio::bind_cancellation_slot(inner_cancel_.slot(), on_strand<&monitor_op::on_inner>{new_ref()}));
    if (m.timeout > clock::duration::zero()) {
      timer_.expires_after(m.timeout);
      timer_pending_ = true;
      timer_.async_wait(on_strand<&monitor_op::on_timer>{new_ref()});
    }
  }

  void on_inner(error_code ec, value_type v) {
    inner_pending_ = false;
    inner_ec_ = ec;
    inner_value_.emplace(std::move(v));
    if (timer_pending_) timer_.cancel();
    maybe_finish();
  }

  void on_timer(error_code ec) {
    timer_pending_ = false;
    if (!ec && inner_pending_) {
      // Stalled: withdraw the inner read. It completes with operation_aborted (taking nothing), or
      // with an item that raced the timer: that one wins.
      timed_out_ = true;
      inner_cancel_.emit(asio::cancellation_type::terminal);
    }
    maybe_finish();
  }

  void on_cancel() {
    if (finished_) return;
    cancelled_ = true;
    if (timer_pending_) timer_.cancel();
    if (inner_pending_) inner_cancel_.emit(cancel_type_.load(std::memory_order_relaxed));
  }

  void maybe_finish() {
    if (inner_pending_ || timer_pending_) return;
    if (inner_ec_ == asio::error::operation_aborted) {
      if (!cancelled_ && timed_out_) return finish(asio::error::timed_out, value_type{});
      return finish(inner_ec_, value_type{});
    }
    if (cancelled_) {
      // The inner read completed before our cancellation reached it: its result is kept for the
      // next call, so a cancelled read loses nothing.
      state_->stash.emplace(inner_ec_, std::move(*inner_value_));
      return finish(asio::error::operation_aborted, value_type{});
    }
    finish(inner_ec_, std::move(*inner_value_));
  }

  void finish(error_code ec, value_type value) {
    finished_ = true;
    result_ec_ = ec;
    result_value_.emplace(std::move(value));
    asio::dispatch(work_, complete_step{new_ref()});
  }

  // On the handler's executor, serialised with the caller's cancellation.
  [[nodiscard]] result take_result() {
    if (slot_.is_connected()) slot_.clear();
    auto& m = *state_;
    error_code ec = result_ec_;
    if (cancel_requested_.load(std::memory_order_acquire) && ec != asio::error::operation_aborted) {
      if (ec != asio::error::timed_out) m.stash.emplace(ec, std::move(*result_value_));
      result_value_.emplace();
      ec = asio::error::operation_aborted;
    } else if (!ec) {
      m.last_delivery = clock::now();
    }
    return result{std::move(handler_), std::move(work_), ec, std::move(*result_value_)};
  }

  void free() noexcept {
    auto alloc = alloc_;
    this->~monitor_op();
    std::allocator_traits<decltype(alloc)>::deallocate(alloc, this, 1);
  }

  std::atomic<std::size_t> refs_{1};
  State* state_;
  strand_type strand_;
  timer_type timer_;
  Handler handler_;
  tracked_executor_t<handler_executor> work_;
  handler_allocator_t<monitor_op, Handler> alloc_;
  asio::cancellation_slot slot_;
  asio::cancellation_signal inner_cancel_;
  error_code inner_ec_;
  std::optional<value_type> inner_value_; // optional: V need not be assignable
  bool inner_pending_ = false;
  bool timer_pending_ = false;
  bool timed_out_ = false;
  bool cancelled_ = false;
  bool finished_ = false;
  // Set by the caller's cancellation (any thread), read on the handler's executor: the release
  // store in cancel_forwarder pairs with the acquire load in take_result(). The type it asked for
  // goes to the strand with the dispatch that follows the store.
  std::atomic<bool> cancel_requested_{false};
  std::atomic<asio::cancellation_type_t> cancel_type_{asio::cancellation_type::none};
  error_code result_ec_;
  std::optional<value_type> result_value_;
};

} // namespace detail
BYTECAST_NAMESPACE_END

#endif // BYTECAST_DETAIL_MONITOR_OP_HPP
