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
template <class Executor = asio::any_io_executor>
class basic_byte_writer : public detail::writer_handle<chunk, Executor> {
  using base = detail::writer_handle<chunk, Executor>;

 public:
  using executor_type = Executor;

  explicit basic_byte_writer(const executor_type& ex, const writer_options& options = {}) : base(ex, options) {}

  template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, asio::execution_context&>
  explicit basic_byte_writer(ExecutionContext& ctx, const writer_options& options = {})
      : base(executor_type(ctx.get_executor()), options) {}

  basic_byte_writer(basic_byte_writer&&) noexcept = default;
  basic_byte_writer& operator=(basic_byte_writer&&) noexcept = default;

  // get_executor(), id(), close(), is_open() and stream_count() come from
  // detail::writer_handle; the destructor closes, like close(): live streams
  // still get every chunk, then the sentinel.

  /// A new stream that receives every chunk written after this call. On a
  /// closed writer it yields the sentinel at once.
  [[nodiscard]] basic_byte_stream<Executor> stream() { return make_stream(false); }

  /// A stream that first receives the retained recent chunks (`replay_limit`).
  [[nodiscard]] basic_byte_stream<Executor> stream(replay_t) { return make_stream(true); }

  /// Broadcasts `data` as one chunk; returns `data.size()`. The caller's buffer
  /// may be reused at once. Throws `system_error`: `broken_pipe` after
  /// close, `would_block` when a bounded `wait` writer has a full stream.
  std::size_t write(std::span<const std::byte> data) {
    error_code ec;
    std::size_t n = write(data, ec);
    if (ec) throw system_error(ec, "bytecast::byte_writer::write");
    return n;
  }

  /// As `write(data)`, reporting errors through `ec` (and returning 0).
  std::size_t write(std::span<const std::byte> data, error_code& ec) {
    return publish(data.size(), [&] { return chunk::copy_of(data); }, ec);
  }

  /// The characters of `text`, as bytes.
  std::size_t write(std::string_view text) { return write(std::as_bytes(std::span(text.data(), text.size()))); }

  /// SyncWriteStream: the whole buffer sequence becomes ONE chunk.
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers) {
    error_code ec;
    std::size_t n = write_some(buffers, ec);
    if (ec) throw system_error(ec, "bytecast::byte_writer::write_some");
    return n;
  }

  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, error_code& ec) {
    return publish(asio::buffer_size(buffers), [&] { return gather(buffers); }, ec);
  }

  /// AsyncWriteStream: the whole buffer sequence becomes ONE chunk. Completion:
  /// `void(error_code, std::size_t)`, never inline. Unbounded writers
  /// complete at once with the whole size; a bounded `wait` writer completes once
  /// every live stream had room (cancellable: `operation_aborted`, delivered to
  /// nobody). `broken_pipe` once closed.
  template <class ConstBufferSequence,
            class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_write_some(const ConstBufferSequence& buffers,
                        CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, void(error_code, std::size_t)>(initiate_write{this}, token,
                                                                                     buffers);
  }

  /// Writes the whole buffer sequence as ONE chunk; the same operation as
  /// `async_write_some` (a writer never writes part of a chunk).
  template <class ConstBufferSequence,
            class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_write(const ConstBufferSequence& buffers,
                   CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, void(error_code, std::size_t)>(initiate_write{this}, token,
                                                                                     buffers);
  }

  /// Total bytes accepted by `write*`, also when no stream existed.
  [[nodiscard]] std::uint64_t bytes_written() const noexcept { return this->core_ ? this->core_->written() : 0; }


 private:
  [[nodiscard]] basic_byte_stream<Executor> make_stream(bool replay) {
    return basic_byte_stream<Executor>(this->executor_, this->subscribe(replay), this->id_);
  }

  template <class ConstBufferSequence>
  [[nodiscard]] static chunk gather(const ConstBufferSequence& buffers) {
    auto* block = detail::chunk_block::allocate(asio::buffer_size(buffers));
    asio::buffer_copy(asio::buffer(block->payload(), block->size), buffers);
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
