// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_BYTE_WRITER_HPP
#define BYTECAST_BYTE_WRITER_HPP

#include <bytecast/byte_stream.hpp>
#include <bytecast/chunk.hpp>
#include <bytecast/detail/broadcast_core.hpp>
#include <bytecast/detail/completion.hpp>
#include <bytecast/detail/config.hpp>
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
class basic_byte_writer {
  using core_type = detail::broadcast_core<chunk>;

 public:
  using executor_type = Executor;

  explicit basic_byte_writer(const executor_type& ex, const writer_options& options = {})
      : executor_(ex),
        core_(std::make_shared<core_type>(detail::registry_for(ex), options)),
        id_(detail::next_writer_id()) {}

  template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, asio::execution_context&>
  explicit basic_byte_writer(ExecutionContext& ctx, const writer_options& options = {})
      : basic_byte_writer(executor_type(ctx.get_executor()), options) {}

  basic_byte_writer(basic_byte_writer&& other) noexcept
      : executor_(other.executor_), core_(std::move(other.core_)), id_(other.id_) {}

  basic_byte_writer& operator=(basic_byte_writer&& other) noexcept {
    if (this != &other) {
      close();
      executor_ = other.executor_;
      core_ = std::move(other.core_);
      id_ = other.id_;
    }
    return *this;
  }

  basic_byte_writer(const basic_byte_writer&) = delete;
  basic_byte_writer& operator=(const basic_byte_writer&) = delete;

  /// Same as `close()`: live streams still get every chunk, then the sentinel.
  ~basic_byte_writer() { close(); }

  [[nodiscard]] executor_type get_executor() const noexcept { return executor_; }

  /// Process-unique, shared with typed writers: 1 for the first writer, then 2, 3, ...
  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }

  /// A new stream that receives every chunk written after this call. On a
  /// closed writer it yields the sentinel at once.
  [[nodiscard]] basic_byte_stream<Executor> stream() { return make_stream(false); }

  /// A stream that first receives the retained recent chunks (`replay_limit`).
  [[nodiscard]] basic_byte_stream<Executor> stream(replay_t) { return make_stream(true); }

  /// Broadcasts `data` as one chunk; returns `data.size()`. The caller's buffer
  /// may be reused at once. Throws `std::system_error`: `broken_pipe` after
  /// close, `would_block` when a bounded `wait` writer has a full stream.
  std::size_t write(std::span<const std::byte> data) {
    std::error_code ec;
    std::size_t n = write(data, ec);
    if (ec) throw std::system_error(ec, "bytecast::byte_writer::write");
    return n;
  }

  /// As `write(data)`, reporting errors through `ec` (and returning 0).
  std::size_t write(std::span<const std::byte> data, std::error_code& ec) {
    return publish(data.size(), [&] { return chunk::copy_of(data); }, ec);
  }

  /// The characters of `text`, as bytes.
  std::size_t write(std::string_view text) { return write(std::as_bytes(std::span(text.data(), text.size()))); }

  /// SyncWriteStream: the whole buffer sequence becomes ONE chunk.
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers) {
    std::error_code ec;
    std::size_t n = write_some(buffers, ec);
    if (ec) throw std::system_error(ec, "bytecast::byte_writer::write_some");
    return n;
  }

  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, std::error_code& ec) {
    return publish(asio::buffer_size(buffers), [&] { return gather(buffers); }, ec);
  }

  /// AsyncWriteStream: the whole buffer sequence becomes ONE chunk. Completion:
  /// `void(std::error_code, std::size_t)`, never inline. Unbounded writers
  /// complete at once with the whole size; a bounded `wait` writer completes once
  /// every live stream had room (cancellable: `operation_aborted`, delivered to
  /// nobody). `broken_pipe` once closed.
  template <class ConstBufferSequence,
            class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_write_some(const ConstBufferSequence& buffers,
                        CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, void(std::error_code, std::size_t)>(initiate_write{this}, token,
                                                                                     buffers);
  }

  /// Writes the whole buffer sequence as ONE chunk; the same operation as
  /// `async_write_some` (a writer never writes part of a chunk).
  template <class ConstBufferSequence,
            class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_write(const ConstBufferSequence& buffers,
                   CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, void(std::error_code, std::size_t)>(initiate_write{this}, token,
                                                                                     buffers);
  }

  /// Idempotent: every live stream gets, after the chunks written before, one sentinel.
  void close() {
    if (core_) core_->close();
  }

  [[nodiscard]] bool is_open() const noexcept { return core_ && core_->is_open(); }

  /// Total bytes accepted by `write*`, also when no stream existed.
  [[nodiscard]] std::uint64_t bytes_written() const noexcept { return core_ ? core_->written() : 0; }

  /// Live streams. A destroyed stream stops counting no later than the next write or close.
  [[nodiscard]] std::size_t stream_count() const noexcept { return core_ ? core_->stream_count() : 0; }

 private:
  [[nodiscard]] basic_byte_stream<Executor> make_stream(bool replay) {
    return basic_byte_stream<Executor>(executor_, core_ ? core_->subscribe(replay) : nullptr, id_);
  }

  template <class ConstBufferSequence>
  [[nodiscard]] static chunk gather(const ConstBufferSequence& buffers) {
    auto* block = detail::chunk_block::allocate(asio::buffer_size(buffers));
    asio::buffer_copy(asio::buffer(block->payload(), block->size), buffers);
    return detail::chunk_access::adopt(block);
  }

  // The one path of every synchronous write: `make` copies the bytes once.
  template <class MakeChunk>
  std::size_t publish(std::size_t size, MakeChunk&& make, std::error_code& ec) {
    ec = {};
    if (!core_) {
      ec = asio::error::bad_descriptor;
      return 0;
    }
    if (size == 0) {
      if (!core_->is_open()) ec = asio::error::broken_pipe;
      return 0;
    }
    ec = core_->publish(make());
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
        std::error_code ec;
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

  executor_type executor_;
  std::shared_ptr<core_type> core_;
  std::uint64_t id_;
};

using byte_writer = basic_byte_writer<>;

} // namespace bytecast

#endif // BYTECAST_BYTE_WRITER_HPP
