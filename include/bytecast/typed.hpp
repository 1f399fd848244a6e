// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_TYPED_HPP
#define BYTECAST_TYPED_HPP

#include <bytecast/detail/broadcast_core.hpp>
#include <bytecast/detail/config.hpp>
#include <bytecast/detail/handles.hpp>
#include <bytecast/detail/reader_queue.hpp>
#include <bytecast/options.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

namespace bytecast {

template <class T, class Executor>
class basic_typed_writer;

/// One reader of a typed writer: every value written after it was made, in
/// order, then one `std::nullopt`, then `asio::error::eof`. Each stream owns its
/// values. Executor, ordering and cancellation rules are the byte stream's.
///
/// Exception safety: as the byte stream's, provided T's move constructor does
/// not throw. A value is moved out of the queue when a read completes; if that
/// move throws, the exception propagates and the value may be lost.
template <class T, class Executor = asio::any_io_executor>
class basic_typed_stream : public detail::stream_handle<T, Executor> {
  using base = detail::stream_handle<T, Executor>;
  using taker = detail::next_item_taker<T, std::optional<T>>;

 public:
  using executor_type = Executor;
  using value_type = T;

  basic_typed_stream(basic_typed_stream&&) noexcept = default;
  basic_typed_stream& operator=(basic_typed_stream&&) noexcept = default;

  // Moves: nothrow; move assignment first detaches the stream it replaces.
  // get_executor(), writer_id() and dropped() come from detail::stream_handle.
  // The destructor detaches from the writer, releasing the backlog; a pending
  // read completes with `operation_aborted`. The destructor is nothrow.

  /// The next value. Completion: `void(error_code, std::optional<T>)`: a
  /// value; after close, once `std::nullopt` with no error; then `asio::error::eof`.
  /// Cancelled: `operation_aborted`, and the value stays for the next read.
  /// Exceptions: strong — if allocating the operation throws, the exception
  /// propagates from this call, nothing is consumed and the handler is not
  /// called. If T's move constructor throws on completion, the exception
  /// escapes from the executor's run() and the value may be lost.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_next(CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, void(error_code, std::optional<T>)>(
        typename base::template initiate_read<taker>{this}, token, taker{});
  }

  /// The next value if one is queued; `asio::error::would_block` when none is.
  /// Exceptions: errors come through `ec`; nothrow if T's move constructor is
  /// (but see the byte stream's `try_next` on bounded `wait` writers). If
  /// moving T throws, the exception propagates and the value may be lost.
  [[nodiscard]] std::optional<T> try_next(error_code& ec) { return detail::try_read(this->queue_, taker{}, ec); }

  /// This reader's backlog in values (a thread-safe snapshot). Nothrow (takes a lock).
  [[nodiscard]] std::size_t queued_items() const { return this->queue_ ? this->queue_->queued_items() : 0; }

 private:
  friend class basic_typed_writer<T, Executor>;
  using base::base;
};

/// One writer of values of type `T`, any number of typed streams; each live
/// stream receives its own copy of every value. Same rules as the byte writer:
/// thread-safe, move-only, closing on destruction, one shared id counter.
///
/// Exception safety: as the byte writer's, plus T. The copies of a value for
/// the streams are made before any stream sees it, so a throwing copy
/// constructor leaves the write undone (strong). Delivery then moves each copy
/// into its queue: if T's move constructor can throw, a write is only basic —
/// when a move throws, some streams may have the value and others not.
template <class T, class Executor = asio::any_io_executor>
class basic_typed_writer : public detail::writer_handle<T, Executor> {
  static_assert(std::is_copy_constructible_v<T> && std::is_move_constructible_v<T>,
                "bytecast::typed_writer<T> needs a copy- and move-constructible T");
  using base = detail::writer_handle<T, Executor>;

 public:
  using executor_type = Executor;
  using value_type = T;

  /// Exceptions: strong — if allocating the writer's state throws
  /// (`std::bad_alloc`), it propagates and no writer (and no id) is made.
  explicit basic_typed_writer(const executor_type& ex, const writer_options& options = {}) : base(ex, options) {}

  /// As above, on `ctx.get_executor()`. Exceptions: strong, as above.
  template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, asio::execution_context&>
  explicit basic_typed_writer(ExecutionContext& ctx, const writer_options& options = {})
      : base(executor_type(ctx.get_executor()), options) {}

  basic_typed_writer(basic_typed_writer&&) noexcept = default;
  basic_typed_writer& operator=(basic_typed_writer&&) noexcept = default;

  // Moves: nothrow; move assignment first closes the writer it replaces.
  // get_executor(), id(), close(), is_open() and stream_count() come from
  // detail::writer_handle; the destructor closes, like close(). The destructor
  // is nothrow.

  /// A new stream that receives every value written after this call.
  /// Exceptions: strong — if allocating the stream's queue throws, no stream
  /// is made and the writer is unchanged.
  [[nodiscard]] basic_typed_stream<T, Executor> stream() { return make_stream(false); }

  /// A stream that first receives the retained recent values (`replay_limit`).
  /// Exceptions: strong — if allocating the queue or copying a retained value
  /// throws, no stream is made and the writer is unchanged.
  [[nodiscard]] basic_typed_stream<T, Executor> stream(replay_t) { return make_stream(true); }

  /// Broadcasts a copy of `value` to every live stream, or to none (when a copy
  /// throws, the exception propagates). Throws `system_error`:
  /// `broken_pipe` after close, `would_block` when a bounded `wait` writer is full.
  /// Exceptions: strong when T's move constructor does not throw — if a copy of
  /// T or making room throws, it propagates and no stream sees the value (the
  /// `T&&` overload then leaves `value` untouched); after a `system_error`,
  /// too, nothing was written. Basic if a move of T throws during delivery.
  void write(const T& value) { publish(T(value)); }
  void write(T&& value) { publish(std::move(value)); }

  /// Writes a copy of `value` to every live stream. Completion:
  /// `void(error_code)`, never inline. A bounded `wait` writer completes once
  /// every live stream had room (cancellable: `operation_aborted`, delivered to
  /// nobody); others complete at once. `broken_pipe` once closed.
  /// Exceptions: if allocating the operation throws, the exception propagates
  /// from this call, nothing is written and the handler is not called. A
  /// delivery that throws `std::bad_alloc` completes with
  /// `asio::error::no_memory`, delivered to nobody; any other exception from
  /// T's copy constructor propagates from this call, nothing delivered and the
  /// handler not called. A parked write whose delivery throws completes with
  /// `no_memory` (`std::bad_alloc`) or `asio::error::invalid_argument` (any other
  /// exception), delivered to nobody, and the writes behind it go on. If T's
  /// move constructor can throw, all this is only basic: some streams may have
  /// the value.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_write(T value, CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, void(error_code)>(initiate_write{this}, token,
                                                                        std::move(value));
  }

  /// Total values accepted by `write`. Nothrow.
  [[nodiscard]] std::uint64_t items_written() const noexcept { return this->core_ ? this->core_->written() : 0; }

 private:
  [[nodiscard]] basic_typed_stream<T, Executor> make_stream(bool replay) {
    return basic_typed_stream<T, Executor>(this->executor_, this->subscribe(replay), this->id_);
  }

  void publish(T&& value) {
    error_code ec =
        this->core_ ? this->core_->publish(std::move(value)) : error_code(asio::error::bad_descriptor);
    if (ec) throw system_error(ec, "bytecast::typed_writer::write");
  }

  struct initiate_write {
    basic_typed_writer* self;
    using executor_type = Executor;
    [[nodiscard]] executor_type get_executor() const noexcept { return self->executor_; }

    template <class Handler>
    void operator()(Handler&& handler, T&& value) const {
      detail::start_write<false>(self->core_, self->executor_, std::move(value), 1, std::forward<Handler>(handler));
    }
  };
};

template <class T>
using typed_writer = basic_typed_writer<T>;
template <class T>
using typed_stream = basic_typed_stream<T>;

} // namespace bytecast

#endif // BYTECAST_TYPED_HPP
