// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_STALLED_MONITOR_HPP
#define BYTECAST_STALLED_MONITOR_HPP

#include <bytecast/detail/completion.hpp>
#include <bytecast/detail/config.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

namespace bytecast {
namespace detail {

// A completion token that only reveals an operation's completion signature
// (used in unevaluated contexts, like Asio's parallel_group probe).
struct signature_probe {};

template <class Signature>
struct probed_signature {
  using type = Signature;
};

template <class Signature>
struct completion_value;

template <class R, class Value>
struct completion_value<R(error_code, Value)> {
  using type = std::decay_t<Value>;
};

// V of a stream whose `async_next` completes with `void(error_code, V)`.
template <class Stream>
using next_value_t = typename completion_value<
    typename decltype(std::declval<Stream&>().async_next(std::declval<signature_probe>()))::type>::type;

} // namespace detail
} // namespace bytecast

BYTECAST_ASIO_NAMESPACE_BEGIN
template <class Signature>
class async_result<bytecast::detail::signature_probe, Signature> {
 public:
  template <class Initiation, class... Args>
  static bytecast::detail::probed_signature<Signature> initiate(Initiation&&, bytecast::detail::signature_probe,
                                                               Args&&...) {
    return {};
  }
};
BYTECAST_ASIO_NAMESPACE_END

namespace bytecast {

/// Wraps any stream `S` with `executor_type`, `get_executor()` and
/// `async_next(token)` completing with `void(error_code, V)` (byte, typed,
/// or your own), adding a read timeout and a delivery throttle.
///
/// Timeout: when the inner stream produces nothing within `d` of the moment the
/// monitor starts waiting on it, `async_next` completes with
/// `asio::error::timed_out` and a value-initialised `V`; the late item is not lost
/// (the next call returns it). An item already available is always delivered.
/// Throttle: each delivery after the first comes no sooner than `d` after the
/// previous one. `async_next` supports terminal, partial and total cancellation
/// without loss. One read at a time; the monitor must outlive it (Asio's rule).
/// The monitor itself holds no I/O object (each read has its own strand and
/// timer), so like streams and writers it may outlive its execution context.
///
/// Exception safety: configuration, observers and moves do not throw (for
/// bytecast streams); `async_next` is strong at initiation.
template <class Stream>
class stalled_monitor {
 public:
  using stream_type = Stream;
  using executor_type = typename Stream::executor_type;
  using value_type = detail::next_value_t<Stream>;
  using clock = std::chrono::steady_clock;

  /// No timeout, no throttle. Nothrow if `Stream`'s move constructor is (as
  /// bytecast streams' is).
  explicit stalled_monitor(Stream s) : stream_(std::move(s)) {}

  stalled_monitor(stalled_monitor&&) noexcept = default;
  stalled_monitor& operator=(stalled_monitor&&) noexcept = default;
  // Moves: nothrow (noexcept: a throwing move of `Stream`, or of a `V` kept
  // for the next call, would terminate).

  /// Sets the timeout (zero or negative: none). Nothrow.
  stalled_monitor& with_timeout(clock::duration d) & {
    timeout_ = d;
    return *this;
  }
  stalled_monitor&& with_timeout(clock::duration d) && { return std::move(with_timeout(d)); }

  /// Sets the minimum spacing between deliveries (zero or negative: none). Nothrow.
  stalled_monitor& with_throttle(clock::duration d) & {
    throttle_ = d;
    return *this;
  }
  stalled_monitor&& with_throttle(clock::duration d) && { return std::move(with_throttle(d)); }

  /// The inner stream's executor. Nothrow.
  [[nodiscard]] executor_type get_executor() const noexcept { return stream_.get_executor(); }

  /// The wrapped stream. Nothrow.
  [[nodiscard]] Stream& inner() noexcept { return stream_; }

  /// When the last item was delivered (the moment its handler was called), if one was: the
  /// throttle counts from it. Nothrow.
  [[nodiscard]] std::optional<clock::time_point> last_delivery() const noexcept { return last_delivery_; }

  /// The next item of the inner stream, or `asio::error::timed_out`.
  /// Completion: `void(error_code, V)`, as the inner stream's.
  /// Exceptions: strong — if allocating the operation (its state, strand or
  /// timer) throws, the exception propagates from this call, nothing is read
  /// and the handler is not called.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_next(CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, void(error_code, value_type)>(initiate_next{this}, token);
  }

 private:
  using strand_type = asio::strand<executor_type>;
  using timer_type = asio::basic_waitable_timer<clock, asio::wait_traits<clock>, strand_type>;

  // One monitored read. Everything below runs on the operation's strand, so the
  // inner read, the timer and a cancellation never race each other. The strand
  // and the timer belong to the operation, not to the monitor: when the
  // execution context is destroyed with a read pending, they go with the
  // read's handlers while the context's services still exist, and a monitor
  // that outlives its context holds no I/O object.
  template <class Handler>
  class operation : public std::enable_shared_from_this<operation<Handler>> {
   public:
    operation(stalled_monitor* self, Handler&& handler)
        : self_(self),
          strand_(asio::make_strand(self->stream_.get_executor())),
          timer_(strand_),
          handler_(std::move(handler)),
          work_(asio::prefer(asio::get_associated_executor(handler_, self->stream_.get_executor()),
                             asio::execution::outstanding_work.tracked)) {}

    void start() {
      auto slot = asio::get_associated_cancellation_slot(handler_);
      if (slot.is_connected()) {
        slot_ = slot;
        slot.template emplace<cancel_forwarder>(this->shared_from_this());
      }
      asio::post(strand_, [op = this->shared_from_this()] { op->begin(); });
    }

    void cancel(asio::cancellation_type_t type) {
      if (finished_) return;
      cancelled_ = true;
      if (timer_pending_) timer_.cancel();
      if (inner_pending_) inner_cancel_.emit(type);
    }

   private:
    struct cancel_forwarder {
      explicit cancel_forwarder(std::shared_ptr<operation> op) noexcept : op_(std::move(op)) {}
      void operator()(asio::cancellation_type_t type) {
        if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                     asio::cancellation_type::total)) == asio::cancellation_type::none)
          return;
        // Noted at once, so that a result that reaches the handler after this
        // point is kept for the next call rather than handed to a caller that
        // has moved on (as `||` does with the loser's result).
        op_->cancel_requested_.store(true, std::memory_order_release);
        asio::dispatch(op_->strand_, [op = op_, type] { op->cancel(type); });
      }
      std::shared_ptr<operation> op_;
    };

    void begin() {
      if (cancelled_) return finish(asio::error::operation_aborted, value_type{});
      auto& m = *self_;
      if (m.stash_) {
        // An item that a cancelled read had already received: it comes first,
        // after the throttle's pause like any other.
        if (throttle_pending()) return pause();
        auto [ec, v] = std::move(*m.stash_);
        m.stash_.reset();
        return deliver(ec, std::move(v));
      }
      if (throttle_pending()) return pause();
      read();
    }

    [[nodiscard]] bool throttle_pending() const {
      const auto& m = *self_;
      return m.throttle_ > clock::duration::zero() && m.last_delivery_ &&
             clock::now() < *m.last_delivery_ + m.throttle_;
    }

    void pause() {
      auto& m = *self_;
      timer_.expires_at(*m.last_delivery_ + m.throttle_);
      timer_pending_ = true;
      timer_.async_wait([op = this->shared_from_this()](error_code) {
        op->timer_pending_ = false;
        op->begin();
      });
    }

    void read() {
      auto& m = *self_;
      inner_pending_ = true;
      m.stream_.async_next(asio::bind_cancellation_slot(
          inner_cancel_.slot(), asio::bind_executor(strand_, [op = this->shared_from_this()](error_code ec,
                                                                                               value_type v) {
            op->inner_pending_ = false;
            op->inner_ec_ = ec;
            op->inner_value_.emplace(std::move(v));
            if (op->timer_pending_) op->timer_.cancel();
            op->maybe_finish();
          })));
      if (m.timeout_ > clock::duration::zero()) {
        timer_.expires_after(m.timeout_);
        timer_pending_ = true;
        timer_.async_wait([op = this->shared_from_this()](error_code ec) {
          op->timer_pending_ = false;
          if (!ec && op->inner_pending_) {
            // Stalled: withdraw the inner read. It completes with operation_aborted
            // (taking nothing), or with an item that raced the timer: that one wins.
            op->timed_out_ = true;
            op->inner_cancel_.emit(asio::cancellation_type::terminal);
          }
          op->maybe_finish();
        });
      }
    }

    void maybe_finish() {
      if (inner_pending_ || timer_pending_) return;
      if (inner_ec_ == asio::error::operation_aborted) {
        if (!cancelled_ && timed_out_) return finish(asio::error::timed_out, value_type{});
        return finish(inner_ec_, value_type{});
      }
      if (cancelled_) {
        // The inner read completed before our cancellation reached it. Its
        // result is kept for the next call: a cancelled read loses nothing.
        self_->stash_.emplace(inner_ec_, std::move(*inner_value_));
        return finish(asio::error::operation_aborted, value_type{});
      }
      deliver(inner_ec_, std::move(*inner_value_));
    }

    void deliver(error_code ec, value_type value) { finish(ec, std::move(value)); }

    void finish(error_code ec, value_type value) {
      finished_ = true;
      result_ec_ = ec;
      result_value_.emplace(std::move(value));
      auto ex = work_;
      asio::dispatch(ex, [op = this->shared_from_this()] { op->complete(); });
    }

    // Runs on the handler's executor, serialised with the caller's cancellation.
    void complete() {
      if (slot_.is_connected()) slot_.clear();
      auto& m = *self_;
      error_code ec = result_ec_;
      if (cancel_requested_.load(std::memory_order_acquire) && ec != asio::error::operation_aborted) {
        if (ec != asio::error::timed_out) m.stash_.emplace(ec, std::move(*result_value_));
        result_value_.emplace();
        ec = asio::error::operation_aborted;
      } else if (!ec) {
        m.last_delivery_ = clock::now();
      }
      Handler handler(std::move(handler_));
      auto work = std::move(work_);
      std::move(handler)(ec, std::move(*result_value_));
    }

    stalled_monitor* self_;
    strand_type strand_;
    timer_type timer_;
    Handler handler_;
    std::decay_t<decltype(asio::prefer(std::declval<asio::associated_executor_t<Handler, executor_type>>(),
                                       asio::execution::outstanding_work.tracked))>
        work_;
    asio::cancellation_slot slot_;
    asio::cancellation_signal inner_cancel_;
    error_code inner_ec_;
    std::optional<value_type> inner_value_; // optional: V need not be assignable
    bool inner_pending_ = false;
    bool timer_pending_ = false;
    bool timed_out_ = false;
    bool cancelled_ = false;
    bool finished_ = false;
    std::atomic<bool> cancel_requested_{false};
    error_code result_ec_;
    std::optional<value_type> result_value_;
  };

  struct initiate_next {
    stalled_monitor* self;
    using executor_type = typename Stream::executor_type;
    [[nodiscard]] executor_type get_executor() const noexcept { return self->get_executor(); }

    template <class Handler>
    void operator()(Handler&& handler) const {
      using op_type = operation<std::decay_t<Handler>>;
      std::make_shared<op_type>(self, std::forward<Handler>(handler))->start();
    }
  };

  Stream stream_;
  clock::duration timeout_ = clock::duration::zero();
  clock::duration throttle_ = clock::duration::zero();
  // Touched by one read at a time (on the strand, or where its handler completes):
  std::optional<clock::time_point> last_delivery_;
  std::optional<std::pair<error_code, value_type>> stash_; // received by a cancelled read
};

} // namespace bytecast

#endif // BYTECAST_STALLED_MONITOR_HPP
