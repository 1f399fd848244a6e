// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_STALLED_MONITOR_HPP
#define BYTECAST_STALLED_MONITOR_HPP

#include <bytecast/detail/config.hpp>
#include <bytecast/detail/monitor_op.hpp>
#include <bytecast/detail/next_value.hpp>

#include <chrono>
#include <optional>
#include <type_traits>
#include <utility>

BYTECAST_NAMESPACE_BEGIN

/// Wraps any stream `S` with `executor_type`, `get_executor()` and `async_next(token)` completing
/// with `void(error_code, V)` (byte, typed, or your own), adding a read timeout and a delivery
/// throttle.
///
/// Timeout: when the inner stream produces nothing within `d` of the moment the monitor starts
/// waiting on it, `async_next` completes with `asio::error::timed_out` and a value-initialised `V`;
/// the late item is not lost (the next call returns it). An item already available is always
/// delivered. Throttle: each delivery after the first comes no sooner than `d` after the previous
/// one (`last_delivery()`). `async_next` supports terminal, partial and total cancellation without
/// loss. One read at a time; the monitor must outlive it (Asio's rule). The monitor holds no I/O
/// object (each read has its own strand and timer), so like streams and writers it may outlive its
/// execution context.
///
/// Exceptions: configuration, observers and moves do not throw (for bytecast streams);
/// `async_next` is strong at initiation (if allocating the read throws, nothing is read and the
/// handler is not called).
template <class Stream>
class stalled_monitor {
 public:
  /// The wrapped stream's type.
  using stream_type = Stream;
  /// The wrapped stream's executor type.
  using executor_type = typename Stream::executor_type;
  /// V of the wrapped stream's `void(error_code, V)`.
  using value_type = detail::next_value_t<Stream>;
  /// The clock of timeouts and throttles.
  using clock = std::chrono::steady_clock;

  /// No timeout, no throttle.
  explicit stalled_monitor(Stream s) : state_(std::move(s)) {}

  /// Moves the stream and the settings (noexcept: a throwing move of `Stream`, or of a `V` kept
  /// for the next call, would terminate).
  stalled_monitor(stalled_monitor&&) noexcept = default;
  /// Moves the stream and the settings.
  stalled_monitor& operator=(stalled_monitor&&) noexcept = default;

  /// Sets the timeout (zero or negative: none).
  stalled_monitor& with_timeout(clock::duration d) & noexcept {
    state_.timeout = d;
    return *this;
  }
  /// Sets the timeout on a temporary (`stalled_monitor{s}.with_timeout(2s)`).
  stalled_monitor&& with_timeout(clock::duration d) && noexcept { return std::move(with_timeout(d)); }

  /// Sets the minimum spacing between deliveries (zero or negative: none).
  stalled_monitor& with_throttle(clock::duration d) & noexcept {
    state_.throttle = d;
    return *this;
  }
  /// Sets the throttle on a temporary.
  stalled_monitor&& with_throttle(clock::duration d) && noexcept { return std::move(with_throttle(d)); }

  /// The inner stream's executor.
  [[nodiscard]] executor_type get_executor() const noexcept { return state_.stream.get_executor(); }

  /// The wrapped stream.
  [[nodiscard]] Stream& inner() noexcept { return state_.stream; }

  /// When the last item was delivered (just before its handler was called), if one was: the
  /// throttle counts from it.
  [[nodiscard]] std::optional<clock::time_point> last_delivery() const noexcept { return state_.last_delivery; }

  /// The next item of the inner stream, or `asio::error::timed_out`. Completion:
  /// `void(error_code, V)`, as the inner stream's.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_next(CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, void(error_code, value_type)>(initiate_next{this}, token);
  }

 private:
  using state_type = detail::monitor_state<Stream, value_type>;

  struct initiate_next {
    stalled_monitor* self;
    using executor_type = typename Stream::executor_type;
    [[nodiscard]] executor_type get_executor() const noexcept { return self->get_executor(); }

    template <class Handler>
    void operator()(Handler&& handler) const {
      using handler_type = std::decay_t<Handler>;
      handler_type h(std::forward<Handler>(handler));
      detail::monitor_op<state_type, handler_type>::start(std::move(h), &self->state_);
    }
  };

  state_type state_;
};

BYTECAST_NAMESPACE_END

#endif // BYTECAST_STALLED_MONITOR_HPP
