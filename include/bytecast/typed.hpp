// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_TYPED_HPP
#define BYTECAST_TYPED_HPP

#include <bytecast/detail/broadcast_core.hpp>
#include <bytecast/detail/config.hpp>
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
template <class T, class Executor = asio::any_io_executor>
class basic_typed_stream {
  using queue_type = detail::reader_queue<T>;
  using taker = detail::next_item_taker<T, std::optional<T>>;

 public:
  using executor_type = Executor;
  using value_type = T;

  basic_typed_stream(basic_typed_stream&& other) noexcept
      : executor_(other.executor_), queue_(std::move(other.queue_)), writer_id_(other.writer_id_) {}

  basic_typed_stream& operator=(basic_typed_stream&& other) noexcept {
    if (this != &other) {
      detach();
      executor_ = other.executor_;
      queue_ = std::move(other.queue_);
      writer_id_ = other.writer_id_;
    }
    return *this;
  }

  basic_typed_stream(const basic_typed_stream&) = delete;
  basic_typed_stream& operator=(const basic_typed_stream&) = delete;

  /// Detaches from the writer, releasing the backlog; a pending read completes
  /// with `operation_aborted`.
  ~basic_typed_stream() { detach(); }

  [[nodiscard]] executor_type get_executor() const noexcept { return executor_; }
  [[nodiscard]] std::uint64_t writer_id() const noexcept { return writer_id_; }

  /// The next value. Completion: `void(std::error_code, std::optional<T>)`: a
  /// value; after close, once `std::nullopt` with no error; then `asio::error::eof`.
  /// Cancelled: `operation_aborted`, and the value stays for the next read.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_next(CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, void(std::error_code, std::optional<T>)>(initiate_next{this},
                                                                                         token);
  }

  /// The next value if one is queued; `asio::error::would_block` when none is.
  [[nodiscard]] std::optional<T> try_next(std::error_code& ec) { return detail::try_read(queue_, taker{}, ec); }

  /// This reader's backlog in values (a thread-safe snapshot).
  [[nodiscard]] std::size_t queued_items() const { return queue_ ? queue_->queued_items() : 0; }

  /// Values this stream lost to a `drop_oldest` writer, in total.
  [[nodiscard]] std::uint64_t dropped() const { return queue_ ? queue_->dropped() : 0; }

 private:
  friend class basic_typed_writer<T, Executor>;

  basic_typed_stream(const executor_type& ex, std::shared_ptr<queue_type> queue, std::uint64_t writer_id)
      : executor_(ex), queue_(std::move(queue)), writer_id_(writer_id) {}

  void detach() noexcept {
    if (queue_) std::exchange(queue_, nullptr)->detach();
  }

  struct initiate_next {
    basic_typed_stream* self;
    using executor_type = Executor;
    [[nodiscard]] executor_type get_executor() const noexcept { return self->executor_; }

    template <class Handler>
    void operator()(Handler&& handler) const {
      detail::start_read(self->queue_, self->executor_, taker{}, std::forward<Handler>(handler));
    }
  };

  executor_type executor_;
  std::shared_ptr<queue_type> queue_;
  std::uint64_t writer_id_ = 0;
};

/// One writer of values of type `T`, any number of typed streams; each live
/// stream receives its own copy of every value. Same rules as the byte writer:
/// thread-safe, move-only, closing on destruction, one shared id counter.
template <class T, class Executor = asio::any_io_executor>
class basic_typed_writer {
  static_assert(std::is_copy_constructible_v<T> && std::is_move_constructible_v<T>,
                "bytecast::typed_writer<T> needs a copy- and move-constructible T");
  using core_type = detail::broadcast_core<T>;

 public:
  using executor_type = Executor;
  using value_type = T;

  explicit basic_typed_writer(const executor_type& ex, const writer_options& options = {})
      : executor_(ex),
        core_(std::make_shared<core_type>(detail::registry_for(ex), options)),
        id_(detail::next_writer_id()) {}

  template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, asio::execution_context&>
  explicit basic_typed_writer(ExecutionContext& ctx, const writer_options& options = {})
      : basic_typed_writer(executor_type(ctx.get_executor()), options) {}

  basic_typed_writer(basic_typed_writer&& other) noexcept
      : executor_(other.executor_), core_(std::move(other.core_)), id_(other.id_) {}

  basic_typed_writer& operator=(basic_typed_writer&& other) noexcept {
    if (this != &other) {
      close();
      executor_ = other.executor_;
      core_ = std::move(other.core_);
      id_ = other.id_;
    }
    return *this;
  }

  basic_typed_writer(const basic_typed_writer&) = delete;
  basic_typed_writer& operator=(const basic_typed_writer&) = delete;

  /// Same as `close()`.
  ~basic_typed_writer() { close(); }

  [[nodiscard]] executor_type get_executor() const noexcept { return executor_; }
  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }

  /// A new stream that receives every value written after this call.
  [[nodiscard]] basic_typed_stream<T, Executor> stream() { return make_stream(false); }

  /// A stream that first receives the retained recent values (`replay_limit`).
  [[nodiscard]] basic_typed_stream<T, Executor> stream(replay_t) { return make_stream(true); }

  /// Broadcasts a copy of `value` to every live stream. Throws `std::system_error`:
  /// `broken_pipe` after close, `would_block` when a bounded `wait` writer is full.
  void write(const T& value) { publish(T(value)); }
  void write(T&& value) { publish(std::move(value)); }

  /// Writes a copy of `value` to every live stream. Completion:
  /// `void(std::error_code)`, never inline. A bounded `wait` writer completes once
  /// every live stream had room (cancellable: `operation_aborted`, delivered to
  /// nobody); others complete at once. `broken_pipe` once closed.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_write(T value, CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, void(std::error_code)>(initiate_write{this}, token,
                                                                        std::move(value));
  }

  /// Idempotent: every live stream gets `std::nullopt` after the values written before.
  void close() {
    if (core_) core_->close();
  }

  [[nodiscard]] bool is_open() const noexcept { return core_ && core_->is_open(); }

  /// Total values accepted by `write`.
  [[nodiscard]] std::uint64_t items_written() const noexcept { return core_ ? core_->written() : 0; }

  [[nodiscard]] std::size_t stream_count() const noexcept { return core_ ? core_->stream_count() : 0; }

 private:
  [[nodiscard]] basic_typed_stream<T, Executor> make_stream(bool replay) {
    return basic_typed_stream<T, Executor>(executor_, core_ ? core_->subscribe(replay) : nullptr, id_);
  }

  void publish(T&& value) {
    std::error_code ec = core_ ? core_->publish(std::move(value)) : std::error_code(asio::error::bad_descriptor);
    if (ec) throw std::system_error(ec, "bytecast::typed_writer::write");
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

  executor_type executor_;
  std::shared_ptr<core_type> core_;
  std::uint64_t id_;
};

template <class T>
using typed_writer = basic_typed_writer<T>;
template <class T>
using typed_stream = basic_typed_stream<T>;

} // namespace bytecast

#endif // BYTECAST_TYPED_HPP
