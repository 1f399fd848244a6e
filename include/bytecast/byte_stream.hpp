// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_BYTE_STREAM_HPP
#define BYTECAST_BYTE_STREAM_HPP

#include <bytecast/chunk.hpp>
#include <bytecast/detail/config.hpp>
#include <bytecast/detail/handles.hpp>
#include <bytecast/detail/read_takers.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>

BYTECAST_NAMESPACE_BEGIN

template <class Executor>
class basic_byte_writer;

/// One reader of a byte writer: every chunk written after it was made, in order, then one empty
/// "close sentinel", then `asio::error::eof`.
///
/// Reads complete through the handler's associated executor (by default this stream's), never
/// inline. One read may be outstanding at a time; a second completes with
/// `asio::error::already_started`. Every read supports per-operation cancellation (terminal,
/// partial, total): a cancelled read completes with `operation_aborted` and the chunk it would have
/// got is returned by the next read. Destroying the stream aborts a pending read. A moved-from
/// stream completes every read with `asio::error::bad_descriptor`.
///
/// Exceptions: a read takes its chunk only when it completes, so a read whose initiation throws
/// (`std::bad_alloc` for its operation) consumes nothing and its handler is not called (strong).
/// Observers, moves and the destructor do not throw.
template <class Executor = asio::any_io_executor>
class basic_byte_stream {
 public:
  /// The executor of the writer this stream came from.
  using executor_type = Executor;

  /// Takes `other`'s place in the writer's fan-out; `other` becomes a moved-from stream.
  basic_byte_stream(basic_byte_stream&& other) noexcept = default;
  /// Detaches this stream (as the destructor does), then takes `other`'s place.
  basic_byte_stream& operator=(basic_byte_stream&& other) noexcept = default;
  /// Detaches from the writer: the backlog is released at once and a pending read completes with
  /// `asio::error::operation_aborted`.
  ~basic_byte_stream() = default;

  /// The executor of the writer this stream came from.
  [[nodiscard]] executor_type get_executor() const noexcept { return state_.executor(); }

  /// The `id()` of the writer this stream came from.
  [[nodiscard]] std::uint64_t writer_id() const noexcept { return state_.writer_id(); }

  /// The next chunk. Completion: `void(error_code, std::span<const std::byte>)`: a chunk (valid
  /// until the next read starts or the stream is destroyed); after close, once an empty span with
  /// no error; then `asio::error::eof`.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_next(CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return state_.async_read(std::forward<CompletionToken>(token), detail::next_span_taker{});
  }

  /// As `async_next`, completing with an owning chunk the caller may keep:
  /// `void(error_code, bytecast::chunk)` (an empty chunk for the sentinel).
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_next_chunk(CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return state_.async_read(std::forward<CompletionToken>(token), detail::next_item_taker<chunk>{});
  }

  /// AsyncReadStream: copies 1 to `buffer_size(buffers)` bytes from the front of the backlog (a
  /// chunk may be read over several calls), waiting while nothing is queued. Completion:
  /// `void(error_code, std::size_t)`; `asio::error::eof` once closed and drained. A zero-size
  /// read completes with 0 (not inline).
  template <class MutableBufferSequence,
            class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_read_some(const MutableBufferSequence& buffers,
                       CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return state_.async_read(std::forward<CompletionToken>(token),
                             detail::read_some_taker<MutableBufferSequence>{buffers});
  }

  /// The next chunk if one is queued, without a trip through the executor: the same protocol,
  /// read position and span lifetime as `async_next`; `asio::error::would_block` when nothing is
  /// queued, `already_started` while a read is pending. Call it from the reader's own executor.
  /// Errors come through `ec`; the only exception is `std::bad_alloc` from posting the completion
  /// of a write that a bounded `wait` writer parked until this read made room.
  [[nodiscard]] std::span<const std::byte> try_next(error_code& ec) {
    return state_.try_read(detail::next_span_taker{}, ec);
  }

  /// For coroutines: `for (auto b = co_await s.next(); !b.empty(); b = co_await s.next()) use(b);`. The next chunk
  /// (valid until the next read), the empty span once for the sentinel, and `system_error` for
  /// every error (`eof` after the sentinel, `lagged`, `overflowed`, a close reason,
  /// `operation_aborted`). A queued chunk is returned without a trip through the executor; so that
  /// a long backlog cannot starve other work on the thread, every 64th such return in a row first
  /// goes once through the executor (a cancellation meanwhile throws `operation_aborted` and takes
  /// nothing). Same read position, `already_started` rule and cancellation (the coroutine's
  /// cancellation slot, nothing lost) as `async_next`.
  asio::awaitable<std::span<const std::byte>> next()
    requires std::is_convertible_v<Executor, asio::any_io_executor>
  {
    return state_.next(detail::next_span_taker{});
  }

  /// Every queued chunk, oldest first, up to `max_bytes` in all (always at least one whole chunk,
  /// however large), as a buffer sequence that `asio::async_write` takes directly; waits while
  /// nothing is queued. Completion: `void(error_code, std::span<const asio::const_buffer>)`; the
  /// buffers stay valid until the next read. The sentinel is one empty span, then `eof`. Same
  /// protocol as `async_next`.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_next_batch(std::size_t max_bytes,
                        CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return state_.async_read(std::forward<CompletionToken>(token), detail::next_batch_taker{max_bytes});
  }

  /// The synchronous twin of `async_next_batch`: `asio::error::would_block` when nothing is queued.
  [[nodiscard]] std::span<const asio::const_buffer> try_next_batch(std::size_t max_bytes, error_code& ec) {
    return state_.try_read(detail::next_batch_taker{max_bytes}, ec);
  }

  /// Chunks queued for this reader (a thread-safe snapshot).
  [[nodiscard]] std::size_t queued_chunks() const noexcept {
    return state_.queue() ? state_.queue()->queued_items() : 0;
  }

  /// Bytes queued for this reader (a thread-safe snapshot).
  [[nodiscard]] std::size_t queued_bytes() const noexcept {
    return state_.queue() ? state_.queue()->queued_weight() : 0;
  }

  /// Bytes this stream lost to a `drop_oldest` writer, in total.
  [[nodiscard]] std::uint64_t dropped() const noexcept { return state_.queue() ? state_.queue()->dropped() : 0; }

  /// The position of the next byte this stream delivers, in the writer's byte sequence (the
  /// first byte ever written is at 0; the header is outside it): it advances by each chunk
  /// returned (by the bytes copied for `async_read_some`), and by the bytes dropped
  /// (`drop_oldest`) or skipped (sync alignment). A live stream starts at `bytes_written()` as
  /// of its creation. 0 on a moved-from stream.
  [[nodiscard]] std::uint64_t position() const noexcept { return state_.queue() ? state_.queue()->position() : 0; }

 private:
  friend class basic_byte_writer<Executor>;
  using queue_type = detail::reader_queue<chunk>;

  basic_byte_stream(const Executor& ex, std::shared_ptr<queue_type> queue, std::uint64_t writer_id) noexcept
      : state_(ex, std::move(queue), writer_id) {}

  detail::stream_state<chunk, Executor> state_;
};

/// A byte stream on `asio::any_io_executor`.
using byte_stream = basic_byte_stream<>;

BYTECAST_NAMESPACE_END

#endif // BYTECAST_BYTE_STREAM_HPP
