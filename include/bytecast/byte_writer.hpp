// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_BYTE_WRITER_HPP
#define BYTECAST_BYTE_WRITER_HPP

#include <bytecast/byte_stream.hpp>
#include <bytecast/chunk.hpp>
#include <bytecast/detail/broadcast_core.hpp>
#include <bytecast/detail/completion.hpp>
#include <bytecast/detail/config.hpp>
#include <bytecast/detail/handles.hpp>
#include <bytecast/options.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace bytecast {

/// One writer, any number of streams: each write is copied once into an
/// immutable chunk that every live stream receives, in one global order.
///
/// Every member may be called concurrently from any thread. `write` and `close`
/// never run a reader's handler inline. Move-only; a moved-from writer fails
/// writes with `asio::error::bad_descriptor` and makes streams that report it.
///
/// Exception safety: writes are all-or-nothing (strong guarantee). Everything
/// that can throw (copying the bytes, making room in each queue and in the
/// replay window) happens before any stream sees the chunk, so on
/// `std::bad_alloc` the exception propagates and no stream sees the write.
/// Errors (`broken_pipe`, `would_block`, ...) also leave nothing written.
/// Asynchronous writes report a delivery that runs out of memory as
/// `asio::error::no_memory` through the error_code. Observers, moves and the
/// destructor do not throw. Posting a completion allocates: in the rare case
/// that this throws `std::bad_alloc`, it propagates from the call that posted
/// it, after the change that completion reports.
template <class Executor = asio::any_io_executor>
class basic_byte_writer : public detail::writer_handle<chunk, Executor> {
  using base = detail::writer_handle<chunk, Executor>;

 public:
  using executor_type = Executor;

  /// Exceptions: strong — if allocating the writer's state throws
  /// (`std::bad_alloc`), it propagates and no writer (and no id) is made.
  explicit basic_byte_writer(const executor_type& ex, const writer_options& options = {}) : base(ex, options) {}

  /// As above, on `ctx.get_executor()`. Exceptions: strong, as above.
  template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, asio::execution_context&>
  explicit basic_byte_writer(ExecutionContext& ctx, const writer_options& options = {})
      : base(executor_type(ctx.get_executor()), options) {}

  basic_byte_writer(basic_byte_writer&&) noexcept = default;
  basic_byte_writer& operator=(basic_byte_writer&&) noexcept = default;

  // Moves: nothrow; move assignment first closes the writer it replaces.
  // get_executor(), id(), close(), is_open() and stream_count() come from
  // detail::writer_handle; the destructor closes, like close(): live streams
  // still get every chunk, then the sentinel. The destructor is nothrow.

  /// A new stream that receives every chunk written after this call. On a
  /// closed writer it yields the sentinel at once. Exceptions: strong — if
  /// allocating the stream's queue throws, no stream is made and the writer is
  /// unchanged.
  [[nodiscard]] basic_byte_stream<Executor> stream() { return make_stream(false); }

  /// A stream that first receives the retained recent chunks (`replay_limit`).
  /// Exceptions: strong — if allocating the queue or room for the replayed
  /// chunks throws, no stream is made and the writer is unchanged.
  [[nodiscard]] basic_byte_stream<Executor> stream(replay_t) { return make_stream(true); }

  /// Broadcasts `data` as one chunk; returns `data.size()`. The caller's buffer
  /// may be reused at once. Throws `system_error`: `broken_pipe` after
  /// close, `would_block` when a bounded `wait` writer has a full stream.
  /// Exceptions: strong — if allocating the chunk or making room throws
  /// (`std::bad_alloc`), the exception propagates and no stream sees the write;
  /// after a `system_error`, too, nothing was written.
  std::size_t write(std::span<const std::byte> data) {
    error_code ec;
    std::size_t n = write(data, ec);
    if (ec) throw system_error(ec, "bytecast::byte_writer::write");
    return n;
  }

  /// As `write(data)`, reporting errors through `ec` (and returning 0).
  /// Exceptions: strong — only `std::bad_alloc` propagates, with nothing written.
  std::size_t write(std::span<const std::byte> data, error_code& ec) {
    return publish(data.size(), [&] { return chunk::copy_of(data); }, ec);
  }

  /// The characters of `text`, as bytes. Exceptions: strong, as `write(data)`.
  std::size_t write(std::string_view text) { return write(std::as_bytes(std::span(text.data(), text.size()))); }

  /// SyncWriteStream: the whole buffer sequence becomes ONE chunk.
  /// Exceptions: strong, as `write(data)`.
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers) {
    error_code ec;
    std::size_t n = write_some(buffers, ec);
    if (ec) throw system_error(ec, "bytecast::byte_writer::write_some");
    return n;
  }

  /// As `write_some(buffers)`, reporting errors through `ec` (and returning 0).
  /// Exceptions: strong — only `std::bad_alloc` propagates, with nothing written.
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, error_code& ec) {
    return publish(asio::buffer_size(buffers), [&] { return gather(buffers); }, ec);
  }

  /// AsyncWriteStream: the whole buffer sequence becomes ONE chunk. Completion:
  /// `void(error_code, std::size_t)`, never inline. Unbounded writers
  /// complete at once with the whole size; a bounded `wait` writer completes once
  /// every live stream had room (cancellable: `operation_aborted`, delivered to
  /// nobody). `broken_pipe` once closed.
  /// Exceptions: strong — if allocating the chunk or the operation throws, the
  /// exception propagates from this call, nothing is written and the handler is
  /// not called. A delivery that runs out of memory completes with
  /// `asio::error::no_memory`, delivered to nobody (also a write parked by a
  /// `wait` writer: the writes behind it go on).
  template <class ConstBufferSequence,
            class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_write_some(const ConstBufferSequence& buffers,
                        CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, void(error_code, std::size_t)>(initiate_write{this}, token,
                                                                                     buffers);
  }

  /// Writes the whole buffer sequence as ONE chunk; the same operation as
  /// `async_write_some` (a writer never writes part of a chunk).
  /// Exceptions: strong, as `async_write_some`.
  template <class ConstBufferSequence,
            class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_write(const ConstBufferSequence& buffers,
                   CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, void(error_code, std::size_t)>(initiate_write{this}, token,
                                                                                     buffers);
  }

  /// Total bytes accepted by `write*`, also when no stream existed. Nothrow.
  [[nodiscard]] std::uint64_t bytes_written() const noexcept { return this->core_ ? this->core_->written() : 0; }


 private:
  [[nodiscard]] basic_byte_stream<Executor> make_stream(bool replay) {
    return basic_byte_stream<Executor>(this->executor_, this->subscribe(replay), this->id_);
  }

  template <class ConstBufferSequence>
  [[nodiscard]] static chunk gather(const ConstBufferSequence& buffers) {
    auto* block = detail::chunk_block::allocate(asio::buffer_size(buffers));
    asio::buffer_copy(asio::buffer(block->payload(), block->size()), buffers);
    return detail::chunk_access::adopt(block);
  }

  // The one path of every synchronous write: `make` copies the bytes once.
  template <class MakeChunk>
  std::size_t publish(std::size_t size, MakeChunk&& make, error_code& ec) {
    ec = {};
    if (!this->core_) {
      ec = asio::error::bad_descriptor;
      return 0;
    }
    if (size == 0) {
      if (!this->core_->is_open()) ec = asio::error::broken_pipe;
      return 0;
    }
    ec = this->core_->publish(make());
    return ec ? 0 : size;
  }

  struct initiate_write {
    basic_byte_writer* self;
    using executor_type = Executor;
    [[nodiscard]] executor_type get_executor() const noexcept { return self->executor_; }

    template <class Handler, class ConstBufferSequence>
    void operator()(Handler&& handler, const ConstBufferSequence& buffers) const {
      const std::size_t size = asio::buffer_size(buffers);
      if (size == 0 || !self->core_) {
        error_code ec;
        if (!self->core_)
          ec = asio::error::bad_descriptor;
        else if (!self->core_->is_open())
          ec = asio::error::broken_pipe;
        detail::post_completion(self->executor_, std::forward<Handler>(handler), ec, std::size_t{0});
        return;
      }
      detail::start_write<true>(self->core_, self->executor_, gather(buffers), size, std::forward<Handler>(handler));
    }
  };

};

using byte_writer = basic_byte_writer<>;

} // namespace bytecast

#endif // BYTECAST_BYTE_WRITER_HPP
