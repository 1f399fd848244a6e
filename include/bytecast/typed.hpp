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
template <class T, class Executor = asio::any_io_executor>
class basic_typed_stream : public detail::stream_handle<T, Executor> {
  using base = detail::stream_handle<T, Executor>;
  using taker = detail::next_item_taker<T, std::optional<T>>;

 public:
  using executor_type = Executor;
  using value_type = T;

  basic_typed_stream(basic_typed_stream&&) noexcept = default;
  basic_typed_stream& operator=(basic_typed_stream&&) noexcept = default;

  // get_executor(), writer_id() and dropped() come from detail::stream_handle.
  // The destructor detaches from the writer, releasing the backlog; a pending
  // read completes with `operation_aborted`.

  /// The next value. Completion: `void(error_code, std::optional<T>)`: a
  /// value; after close, once `std::nullopt` with no error; then `asio::error::eof`.
  /// Cancelled: `operation_aborted`, and the value stays for the next read.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_next(CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, void(error_code, std::optional<T>)>(
        typename base::template initiate_read<taker>{this}, token, taker{});
  }

  /// The next value if one is queued; `asio::error::would_block` when none is.
  [[nodiscard]] std::optional<T> try_next(error_code& ec) { return detail::try_read(this->queue_, taker{}, ec); }

  /// This reader's backlog in values (a thread-safe snapshot).
  [[nodiscard]] std::size_t queued_items() const { return this->queue_ ? this->queue_->queued_items() : 0; }

 private:
  friend class basic_typed_writer<T, Executor>;
  using base::base;
};

/// One writer of values of type `T`, any number of typed streams; each live
/// stream receives its own copy of every value. Same rules as the byte writer:
/// thread-safe, move-only, closing on destruction, one shared id counter.
template <class T, class Executor = asio::any_io_executor>
class basic_typed_writer : public detail::writer_handle<T, Executor> {
  static_assert(std::is_copy_constructible_v<T> && std::is_move_constructible_v<T>,
                "bytecast::typed_writer<T> needs a copy- and move-constructible T");
  using base = detail::writer_handle<T, Executor>;

 public:
  using executor_type = Executor;
  using value_type = T;

  explicit basic_typed_writer(const executor_type& ex, const writer_options& options = {}) : base(ex, options) {}

  template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, asio::execution_context&>
  explicit basic_typed_writer(ExecutionContext& ctx, const writer_options& options = {})
      : base(executor_type(ctx.get_executor()), options) {}

  basic_typed_writer(basic_typed_writer&&) noexcept = default;
  basic_typed_writer& operator=(basic_typed_writer&&) noexcept = default;

  // get_executor(), id(), close(), is_open() and stream_count() come from
  // detail::writer_handle; the destructor closes, like close().

  /// A new stream that receives every value written after this call.
  [[nodiscard]] basic_typed_stream<T, Executor> stream() { return make_stream(false); }

  /// A stream that first receives the retained recent values (`replay_limit`).
  [[nodiscard]] basic_typed_stream<T, Executor> stream(replay_t) { return make_stream(true); }

  /// Broadcasts a copy of `value` to every live stream, or to none (when a copy
  /// throws, the exception propagates). Throws `system_error`:
  /// `broken_pipe` after close, `would_block` when a bounded `wait` writer is full.
  void write(const T& value) { publish(T(value)); }
  void write(T&& value) { publish(std::move(value)); }

  /// Writes a copy of `value` to every live stream. Completion:
  /// `void(error_code)`, never inline. A bounded `wait` writer completes once
  /// every live stream had room (cancellable: `operation_aborted`, delivered to
  /// nobody); others complete at once. `broken_pipe` once closed.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_write(T value, CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, void(error_code)>(initiate_write{this}, token,
                                                                        std::move(value));
  }

  /// Total values accepted by `write`.
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
