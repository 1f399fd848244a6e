// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_BYTE_WRITER_HPP
#define BYTECAST_BYTE_WRITER_HPP

#include <bytecast/byte_stream.hpp>
#include <bytecast/chunk.hpp>
#include <bytecast/detail/chunk_access.hpp>
#include <bytecast/detail/completion.hpp>
#include <bytecast/detail/config.hpp>
#include <bytecast/detail/handles.hpp>
#include <bytecast/detail/write_op.hpp>
#include <bytecast/options.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>

BYTECAST_NAMESPACE_BEGIN

/// One writer, any number of streams: each write is copied once into an immutable chunk that every
/// live stream receives, in one global order.
///
/// Every member may be called concurrently from any thread. `write` and `close` never run a
/// reader's handler inline. Move-only; a moved-from writer fails writes with
/// `asio::error::bad_descriptor` and makes streams that report it.
///
/// Exceptions: writes are all-or-nothing (strong). Everything that can throw (copying the bytes,
/// making room in each queue and in the replay window) happens before any stream sees the chunk,
/// so on `std::bad_alloc` the exception propagates and no stream sees the write; an error
/// (`broken_pipe`, `would_block`, ...) also leaves nothing written. Asynchronous writes that run
/// out of memory while delivering complete with `asio::error::no_memory`, delivered to nobody.
/// Making a writer or a stream is strong. Observers, moves, `close()` and the destructor do not
/// throw. Posting a completion allocates: if even that fails, the operation is destroyed with its
/// handler, unrun.
template <class Executor = asio::any_io_executor>
class basic_byte_writer {
 public:
  /// The executor given at construction; streams complete on it by default.
  using executor_type = Executor;

  /// A writer on `ex`, bounded and replaying as `options` says (unbounded, no replay by default).
  explicit basic_byte_writer(const executor_type& ex, const writer_options& options = {}) : state_(ex, options) {}

  /// As above, on `ctx.get_executor()` (an Asio execution context such as `asio::io_context`).
  template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, asio::execution_context&>
  explicit basic_byte_writer(ExecutionContext& ctx, const writer_options& options = {})
      : state_(executor_type(ctx.get_executor()), options) {}

  /// Takes `other`'s streams and state; `other` becomes a moved-from writer.
  basic_byte_writer(basic_byte_writer&& other) noexcept = default;
  /// Closes this writer (as `close()`), then takes `other`'s streams and state.
  basic_byte_writer& operator=(basic_byte_writer&& other) noexcept = default;
  /// Closes the writer: live streams still get every chunk, then the sentinel.
  ~basic_byte_writer() = default;

  /// The executor given at construction.
  [[nodiscard]] executor_type get_executor() const noexcept { return state_.executor(); }

  /// Process-unique, one counter for byte and typed writers: 1 for the first writer, then 2, 3, ...
  [[nodiscard]] std::uint64_t id() const noexcept { return state_.id(); }

  /// A new stream that receives every chunk written after this call, with the writer's limit and
  /// policy. On a closed writer it yields the sentinel (or the close reason) at once.
  [[nodiscard]] basic_byte_stream<Executor> stream() { return stream(stream_options{}); }

  /// A stream that first receives the retained recent chunks (`writer_options::replay_limit`),
  /// oldest first, then everything written after this call: `stream({.replay = true})`.
  ///
  /// (A template only so that `stream({})` means `stream(stream_options{})`: a braced list
  /// cannot deduce `R`.)
  template <std::same_as<replay_t> R>
  [[nodiscard]] basic_byte_stream<Executor> stream(R) {
    return stream(stream_options{.replay = true});
  }

  /// A stream with its own queue limit and overflow policy (unset: the writer's; a limit of 0 is
  /// unbounded, whatever the policy), and optionally the replay. Only bounded `wait` streams hold
  /// writes back: a full `drop_oldest` or `disconnect` stream never does, whatever the others are.
  /// Replayed chunks are queued whatever the limit; the limit applies from the next write.
  [[nodiscard]] basic_byte_stream<Executor> stream(const stream_options& options) {
    return basic_byte_stream<Executor>(state_.executor(), state_.subscribe(options), state_.id());
  }

  /// Broadcasts `data` as one chunk; returns `data.size()`. The caller's buffer may be reused at
  /// once; an empty `data` delivers nothing. Throws `system_error`: `asio::error::broken_pipe`
  /// after close, `asio::error::would_block` when a bounded `wait` writer has a full stream.
  std::size_t write(std::span<const std::byte> data) {
    error_code ec;
    const std::size_t n = write(data, ec);
    if (ec) throw system_error(ec, "bytecast::byte_writer::write");
    return n;
  }

  /// As `write(data)`, reporting errors through `ec` (and returning 0).
  std::size_t write(std::span<const std::byte> data, error_code& ec) {
    return publish(data.size(), [&] { return chunk::copy_of(data); }, ec);
  }

  /// The characters of `text`, as bytes.
  std::size_t write(std::string_view text) { return write(std::as_bytes(std::span(text.data(), text.size()))); }

  /// As `write(data)`, and marks the chunk as a *sync point*: a place where a reader may start (a
  /// key frame, the start of a record group). Streams made with `align_to_sync_points` start, and
  /// resume after a gap, only at sync points.
  std::size_t write(std::span<const std::byte> data, sync_point_t) {
    error_code ec;
    const std::size_t n = write(data, sync_point, ec);
    if (ec) throw system_error(ec, "bytecast::byte_writer::write");
    return n;
  }

  /// As `write(data, sync_point)`, reporting errors through `ec` (and returning 0).
  std::size_t write(std::span<const std::byte> data, sync_point_t, error_code& ec) {
    return publish(data.size(), [&] { return as_sync_point(chunk::copy_of(data)); }, ec);
  }

  /// The characters of `text`, as bytes, as a sync point.
  std::size_t write(std::string_view text, sync_point_t) {
    return write(std::as_bytes(std::span(text.data(), text.size())), sync_point);
  }

  /// SyncWriteStream: the whole buffer sequence becomes ONE chunk; returns its size.
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers) {
    error_code ec;
    const std::size_t n = write_some(buffers, ec);
    if (ec) throw system_error(ec, "bytecast::byte_writer::write_some");
    return n;
  }

  /// As `write_some(buffers)`, reporting errors through `ec` (and returning 0).
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, error_code& ec) {
    return publish(asio::buffer_size(buffers), [&] { return gather(buffers); }, ec);
  }

  /// AsyncWriteStream: the whole buffer sequence becomes ONE chunk. Completion:
  /// `void(error_code, std::size_t)`, never inline. Unbounded writers complete at once with the
  /// whole size; a bounded `wait` writer completes once every live stream had room (cancellable:
  /// `operation_aborted`, delivered to nobody). `asio::error::broken_pipe` once closed.
  template <class ConstBufferSequence,
            class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_write_some(const ConstBufferSequence& buffers,
                        CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, void(error_code, std::size_t)>(initiate_write{this, false}, token,
                                                                                 buffers);
  }

  /// Writes the whole buffer sequence as ONE chunk: the same operation as `async_write_some` (a
  /// writer never writes part of a chunk).
  template <class ConstBufferSequence,
            class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_write(const ConstBufferSequence& buffers,
                   CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return async_write_some(buffers, std::forward<CompletionToken>(token));
  }

  /// As `async_write(buffers, token)`, and marks the chunk as a sync point.
  template <class ConstBufferSequence,
            class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_write(const ConstBufferSequence& buffers, sync_point_t,
                   CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, void(error_code, std::size_t)>(initiate_write{this, true}, token,
                                                                                 buffers);
  }

  /// Every stream made from now on first receives `bytes` as one chunk, before replayed, resumed
  /// or live chunks (a video's initialisation segment, a CSV header line); streams that exist
  /// already do not. The header is outside `bytes_written()`, positions, queue limits and the
  /// replay window (it counts in `queued_chunks()` / `queued_bytes()` while queued). A new stream
  /// sees the old or the new header, whole. Strong (`std::bad_alloc`); an empty header is none.
  void set_header(std::span<const std::byte> bytes) {
    chunk header = bytes.empty() ? chunk{} : chunk::copy_of(bytes);
    if (const auto& core = state_.core()) core->set_header(std::move(header));
  }

  /// The characters of `text` as the header.
  void set_header(std::string_view text) { set_header(std::as_bytes(std::span(text.data(), text.size()))); }

  /// Streams made from now on get no header.
  void clear_header() noexcept {
    if (const auto& core = state_.core()) core->set_header(chunk{});
  }

  /// The current header (empty: none).
  [[nodiscard]] chunk header() const noexcept { return state_.core() ? state_.core()->header() : chunk{}; }

  /// Idempotent: every live stream gets, after what was written before, one close sentinel.
  /// Writes parked by a bounded `wait` writer and waits for streams complete with
  /// `asio::error::broken_pipe`.
  void close() noexcept { state_.close(); }

  /// As `close()`, except that each stream, once it has delivered everything written before,
  /// completes every further read with `reason` instead of the sentinel and `eof` (every read
  /// form, streams made later too): readers can tell a broken feed from a finished one. Only the
  /// first close counts; `close({})` is `close()`.
  void close(const error_code& reason) noexcept { state_.close(reason); }

  /// Completes (never inline) once at least `n` streams are live, also when they already are.
  /// Completion: `void(error_code)`; `asio::error::broken_pipe` if the writer is closed first or
  /// already; cancellable (`operation_aborted`). Lets a producer start only when someone listens.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_wait_for_streams(std::size_t n,
                              CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return state_.async_wait_streams(std::forward<CompletionToken>(token), n, false);
  }

  /// Completes (never inline) once no stream is live, also when none is. A stream stops being
  /// live when it is destroyed or cut off (`disconnect`). Completion: `void(error_code)`;
  /// `broken_pipe` if the writer is closed first or already; cancellable. Lets a producer stop
  /// when the last listener leaves (add your own grace period).
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_wait_no_streams(CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return state_.async_wait_streams(std::forward<CompletionToken>(token), 0, true);
  }

  /// False once closed (or moved from).
  [[nodiscard]] bool is_open() const noexcept { return state_.is_open(); }

  /// Total bytes accepted by `write*`, also when no stream existed.
  [[nodiscard]] std::uint64_t bytes_written() const noexcept {
    return state_.core() ? state_.core()->written() : 0;
  }

  /// Live streams. A stream stops counting when it is destroyed (before its destructor returns) or
  /// cut off.
  [[nodiscard]] std::size_t stream_count() const noexcept { return state_.stream_count(); }

 private:
  [[nodiscard]] static chunk as_sync_point(chunk c) noexcept {
    detail::chunk_access::mark_sync_point(c); // before the chunk is shared
    return c;
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
    const auto& core = state_.core();
    if (!core) {
      ec = asio::error::bad_descriptor;
      return 0;
    }
    if (size == 0) {
      if (!core->is_open()) ec = asio::error::broken_pipe;
      return 0;
    }
    ec = core->publish(make());
    return ec ? 0 : size;
  }

  struct initiate_write {
    basic_byte_writer* self;
    bool sync = false; // the chunk is a sync point
    using executor_type = Executor;
    [[nodiscard]] executor_type get_executor() const noexcept { return self->get_executor(); }

    template <class Handler, class ConstBufferSequence>
    void operator()(Handler&& handler, const ConstBufferSequence& buffers) const {
      using signature = void(error_code, std::size_t);
      const auto& core = self->state_.core();
      const std::size_t size = asio::buffer_size(buffers);
      if (core && size == 0) {
        // Nothing to deliver: completes with 0, or broken_pipe once closed.
        const error_code ec = core->is_open() ? error_code() : error_code(asio::error::broken_pipe);
        return detail::immediate_completion<signature>::post(self->get_executor(), std::forward<Handler>(handler), ec);
      }
      detail::start_write<signature>(core, self->get_executor(),
                                     core ? (sync ? as_sync_point(gather(buffers)) : gather(buffers)) : chunk(), size,
                                     std::forward<Handler>(handler));
    }
  };

  detail::writer_state<chunk, Executor> state_;
};

/// A byte writer on `asio::any_io_executor`.
using byte_writer = basic_byte_writer<>;

BYTECAST_NAMESPACE_END

#endif // BYTECAST_BYTE_WRITER_HPP
