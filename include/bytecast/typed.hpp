// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_TYPED_HPP
#define BYTECAST_TYPED_HPP

#include <bytecast/detail/config.hpp>
#include <bytecast/detail/handles.hpp>
#include <bytecast/detail/read_takers.hpp>
#include <bytecast/detail/write_op.hpp>
#include <bytecast/options.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

BYTECAST_NAMESPACE_BEGIN

template <class T, class Executor>
class basic_typed_writer;

/// One reader of a typed writer: every value written after it was made, in order, then one
/// `std::nullopt`, then `asio::error::eof`. Each stream owns its values. Executor, ordering,
/// cancellation and one-read-at-a-time rules are the byte stream's.
///
/// Exceptions: a read takes its value only when it completes, so a read whose initiation throws
/// consumes nothing and its handler is not called (strong). Observers, moves and the destructor do
/// not throw.
template <class T, class Executor = asio::any_io_executor>
class basic_typed_stream {
  using taker = detail::next_item_taker<std::optional<T>>;

 public:
  /// The executor of the writer this stream came from.
  using executor_type = Executor;
  /// The type of the values.
  using value_type = T;

  /// Takes `other`'s place in the writer's fan-out; `other` becomes a moved-from stream.
  basic_typed_stream(basic_typed_stream&& other) noexcept = default;
  /// Detaches this stream (as the destructor does), then takes `other`'s place.
  basic_typed_stream& operator=(basic_typed_stream&& other) noexcept = default;
  /// Detaches from the writer: the backlog is released at once and a pending read completes with
  /// `asio::error::operation_aborted`.
  ~basic_typed_stream() = default;

  /// The executor of the writer this stream came from.
  [[nodiscard]] executor_type get_executor() const noexcept { return state_.executor(); }

  /// The `id()` of the writer this stream came from.
  [[nodiscard]] std::uint64_t writer_id() const noexcept { return state_.writer_id(); }

  /// The next value. Completion: `void(error_code, std::optional<T>)`: a value; after close, once
  /// `std::nullopt` with no error; then `asio::error::eof`. Cancelled: `operation_aborted`, and
  /// the value stays for the next read.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_next(CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return state_.async_read(std::forward<CompletionToken>(token), taker{});
  }

  /// The next value if one is queued, without a trip through the executor; `would_block` when
  /// none is. Errors come through `ec` (but see the byte stream's `try_next` on bounded writers).
  [[nodiscard]] std::optional<T> try_next(error_code& ec) { return state_.try_read(taker{}, ec); }

  /// For coroutines: `while (auto v = co_await s.next()) use(*v);` (an optional tests as a bool). The next value,
  /// `std::nullopt` once for the end, and `system_error` for every error; a queued value comes
  /// without a trip through the executor (every 64th in a row goes through it once). See the byte
  /// stream's `next()`.
  asio::awaitable<std::optional<T>> next()
    requires std::is_convertible_v<Executor, asio::any_io_executor>
  {
    return state_.next(taker{});
  }

  /// Values queued for this reader (a thread-safe snapshot).
  [[nodiscard]] std::size_t queued_items() const noexcept {
    return state_.queue() ? state_.queue()->queued_items() : 0;
  }

  /// Values this stream lost to a `drop_oldest` writer, in total.
  [[nodiscard]] std::uint64_t dropped() const noexcept { return state_.queue() ? state_.queue()->dropped() : 0; }

 private:
  friend class basic_typed_writer<T, Executor>;
  using queue_type = detail::reader_queue<T>;

  basic_typed_stream(const Executor& ex, std::shared_ptr<queue_type> queue, std::uint64_t writer_id) noexcept
      : state_(ex, std::move(queue), writer_id) {}

  detail::stream_state<T, Executor> state_;
};

/// One writer of values of type `T`, any number of typed streams; each live stream receives its own
/// copy of every value. The byte writer's rules apply: thread-safe, move-only, closing on
/// destruction, one shared id counter, bounded per `writer_options` (limits count values).
///
/// Exceptions: as the byte writer's. The copies of a value for the streams are made before any
/// stream sees it, so a copy constructor that throws leaves the write undone and the exception
/// propagates (strong); `T` must be nothrow-move-constructible, so delivering the copies cannot
/// fail halfway.
template <class T, class Executor = asio::any_io_executor>
class basic_typed_writer {
  static_assert(std::is_copy_constructible_v<T>, "bytecast::typed_writer<T> needs a copy-constructible T");
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "bytecast::typed_writer<T> needs a T whose move constructor does not throw (noexcept)");

 public:
  /// The executor given at construction; streams complete on it by default.
  using executor_type = Executor;
  /// The type of the values.
  using value_type = T;

  /// A writer on `ex`, bounded and replaying as `options` says (limits count values).
  explicit basic_typed_writer(const executor_type& ex, const writer_options& options = {}) : state_(ex, options) {}

  /// As above, on `ctx.get_executor()` (an Asio execution context such as `asio::io_context`).
  template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, asio::execution_context&>
  explicit basic_typed_writer(ExecutionContext& ctx, const writer_options& options = {})
      : state_(executor_type(ctx.get_executor()), options) {}

  /// Takes `other`'s streams and state; `other` becomes a moved-from writer.
  basic_typed_writer(basic_typed_writer&& other) noexcept = default;
  /// Closes this writer (as `close()`), then takes `other`'s streams and state.
  basic_typed_writer& operator=(basic_typed_writer&& other) noexcept = default;
  /// Closes the writer: live streams still get every value, then `std::nullopt`.
  ~basic_typed_writer() = default;

  /// The executor given at construction.
  [[nodiscard]] executor_type get_executor() const noexcept { return state_.executor(); }

  /// Process-unique, one counter for byte and typed writers: 1 for the first writer, then 2, 3, ...
  [[nodiscard]] std::uint64_t id() const noexcept { return state_.id(); }

  /// A new stream that receives every value written after this call, with the writer's limit and
  /// policy.
  [[nodiscard]] basic_typed_stream<T, Executor> stream() { return stream(stream_options{}); }

  /// A stream that first receives the retained recent values (`writer_options::replay_limit`):
  /// `stream({.replay = true})`.
  ///
  /// (A template only so that `stream({})` means `stream(stream_options{})`: a braced list
  /// cannot deduce `R`.)
  template <std::same_as<replay_t> R>
  [[nodiscard]] basic_typed_stream<T, Executor> stream(R) {
    return stream(stream_options{.replay = true});
  }

  /// A stream with its own queue limit (in values) and overflow policy, as the byte writer's.
  /// Positions and sync points are for byte writers: `from_position` or `align_to_sync_points`
  /// throw `system_error` with `asio::error::invalid_argument` and make no stream.
  [[nodiscard]] basic_typed_stream<T, Executor> stream(const stream_options& options) {
    if (options.from_position || options.align_to_sync_points)
      throw system_error(asio::error::invalid_argument, "bytecast::typed_writer::stream: positions and sync points are for byte writers");
    return basic_typed_stream<T, Executor>(state_.executor(), state_.subscribe(options), state_.id());
  }

  /// Broadcasts a copy of `value` to every live stream. Throws `system_error`:
  /// `asio::error::broken_pipe` after close, `asio::error::would_block` when a bounded `wait` writer
  /// is full. After any exception no stream has the value (`write(T&&)` then leaves `value` as it was).
  void write(const T& value) { publish(T(value)); }
  /// As `write(const T&)`, moving `value` into the last stream.
  void write(T&& value) { publish(std::move(value)); }

  /// Writes a copy of `value` to every live stream. Completion: `void(error_code)`, never inline.
  /// A bounded `wait` writer completes once every live stream had room (cancellable:
  /// `operation_aborted`, delivered to nobody); others complete at once. `broken_pipe` once closed.
  /// A delivery that runs out of memory completes with `asio::error::no_memory`; any other
  /// exception from T's copy constructor propagates from this call (nothing delivered, the handler
  /// not called), or, for a write that was waiting for room, completes it with
  /// `asio::error::invalid_argument`, delivered to nobody.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_write(T value, CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, void(error_code)>(initiate_write{this}, token, std::move(value));
  }

  /// Idempotent: every live stream gets, after what was written before, one `std::nullopt`.
  void close() noexcept { state_.close(); }

  /// As `close()`, but each stream then completes every further read with `reason` instead of
  /// `std::nullopt` and `eof` (see the byte writer). `close({})` is `close()`.
  void close(const error_code& reason) noexcept { state_.close(reason); }

  /// Completes (never inline) once at least `n` streams are live: `void(error_code)`; see the byte
  /// writer.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_wait_for_streams(std::size_t n,
                              CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return state_.async_wait_streams(std::forward<CompletionToken>(token), n, false);
  }

  /// Completes (never inline) once no stream is live: `void(error_code)`; see the byte writer.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_wait_no_streams(CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return state_.async_wait_streams(std::forward<CompletionToken>(token), 0, true);
  }

  /// False once closed (or moved from).
  [[nodiscard]] bool is_open() const noexcept { return state_.is_open(); }

  /// Total values accepted by `write`.
  [[nodiscard]] std::uint64_t items_written() const noexcept {
    return state_.core() ? state_.core()->written() : 0;
  }

  /// Live streams. A stream stops counting when it is destroyed (before its destructor returns) or
  /// cut off.
  [[nodiscard]] std::size_t stream_count() const noexcept { return state_.stream_count(); }

 private:
  void publish(T&& value) {
    const error_code ec =
        state_.core() ? state_.core()->publish(std::move(value)) : error_code(asio::error::bad_descriptor);
    if (ec) throw system_error(ec, "bytecast::typed_writer::write");
  }

  struct initiate_write {
    basic_typed_writer* self;
    using executor_type = Executor;
    [[nodiscard]] executor_type get_executor() const noexcept { return self->get_executor(); }

    template <class Handler>
    void operator()(Handler&& handler, T&& value) const {
      detail::start_write<void(error_code)>(self->state_.core(), self->get_executor(), std::move(value), 1,
                                            std::forward<Handler>(handler));
    }
  };

  detail::writer_state<T, Executor> state_;
};

/// A typed writer on `asio::any_io_executor`.
template <class T>
using typed_writer = basic_typed_writer<T>;
/// A typed stream on `asio::any_io_executor`.
template <class T>
using typed_stream = basic_typed_stream<T>;

BYTECAST_NAMESPACE_END

#endif // BYTECAST_TYPED_HPP
