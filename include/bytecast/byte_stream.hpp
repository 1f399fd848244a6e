// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_BYTE_STREAM_HPP
#define BYTECAST_BYTE_STREAM_HPP

#include <bytecast/chunk.hpp>
#include <bytecast/detail/config.hpp>
#include <bytecast/detail/handles.hpp>
#include <bytecast/detail/reader_queue.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <system_error>
#include <utility>

namespace bytecast {

template <class Executor>
class basic_byte_writer;

/// One reader of a byte writer: every chunk written after it was made, in order,
/// then one empty "close sentinel", then `asio::error::eof`.
///
/// Reads complete through the handler's associated executor (by default this
/// stream's), never inline. One read may be outstanding at a time. Each read
/// supports per-operation cancellation (terminal, partial, total): a cancelled
/// read completes with `operation_aborted` and the chunk it would have got is
/// returned by the next read. Destroying the stream aborts a pending read.
/// A moved-from stream completes every read with `asio::error::bad_descriptor`.
///
/// Exception safety: a read takes its chunk only when it completes, so a read
/// whose initiation throws consumes nothing. Observers, moves and the
/// destructor do not throw.
template <class Executor = asio::any_io_executor>
class basic_byte_stream : public detail::stream_handle<chunk, Executor> {
  using base = detail::stream_handle<chunk, Executor>;
  template <class Taker>
  using initiate_read = typename base::template initiate_read<Taker>;

 public:
  using executor_type = Executor;

  basic_byte_stream(basic_byte_stream&&) noexcept = default;
  basic_byte_stream& operator=(basic_byte_stream&&) noexcept = default;

  // Moves: nothrow; move assignment first detaches the stream it replaces.
  // get_executor(), writer_id() and dropped() come from detail::stream_handle.
  // The destructor detaches from the writer, releasing the backlog; a pending
  // read completes with `operation_aborted`. The destructor is nothrow.

  /// The next chunk. Completion: `void(error_code, std::span<const std::byte>)`:
  /// a chunk (valid until the next read starts or the stream is destroyed); after
  /// close, once an empty span with no error; then `asio::error::eof`.
  /// Exceptions: strong — if allocating the operation throws, the exception
  /// propagates from this call, nothing is consumed and the handler is not called.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_next(CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, void(error_code, std::span<const std::byte>)>(
        initiate_read<detail::next_span_taker>{this}, token, detail::next_span_taker{});
  }

  /// As `async_next`, completing with an owning `chunk`:
  /// `void(error_code, bytecast::chunk)` (empty chunk for the sentinel).
  /// Exceptions: strong, as `async_next`.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_next_chunk(CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    using taker = detail::next_item_taker<chunk, chunk>;
    return asio::async_initiate<CompletionToken, void(error_code, chunk)>(initiate_read<taker>{this}, token,
                                                                               taker{});
  }

  /// AsyncReadStream: copies 1..buffer_size(buffers) bytes from the front of the
  /// backlog, waiting while nothing is queued. Completion:
  /// `void(error_code, std::size_t)`; `asio::error::eof` once closed and drained.
  /// Exceptions: strong, as `async_next`.
  template <class MutableBufferSequence,
            class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_read_some(const MutableBufferSequence& buffers,
                       CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    using taker = detail::read_some_taker<MutableBufferSequence>;
    return asio::async_initiate<CompletionToken, void(error_code, std::size_t)>(initiate_read<taker>{this},
                                                                                     token, taker{buffers});
  }

  /// The next chunk if one is queued, without a trip through the executor. Same
  /// protocol and read position as `async_next`; `asio::error::would_block` when
  /// nothing is queued, `already_started` while a read is pending.
  /// Exceptions: nothrow in practice (errors come through `ec`); the one
  /// exception is `std::bad_alloc` from posting the completion of a write that
  /// a bounded `wait` writer had parked until this read made room.
  [[nodiscard]] std::span<const std::byte> try_next(error_code& ec) {
    return detail::try_read(this->queue_, detail::next_span_taker{}, ec);
  }

  /// This reader's backlog (a thread-safe snapshot). Nothrow (takes a lock).
  [[nodiscard]] std::size_t queued_chunks() const { return this->queue_ ? this->queue_->queued_items() : 0; }
  [[nodiscard]] std::size_t queued_bytes() const { return this->queue_ ? this->queue_->queued_weight() : 0; }

 private:
  friend class basic_byte_writer<Executor>;
  using base::base;
};

using byte_stream = basic_byte_stream<>;

} // namespace bytecast

#endif // BYTECAST_BYTE_STREAM_HPP
