// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_HANDLES_HPP
#define BYTECAST_DETAIL_HANDLES_HPP

// What a writer handle and a stream handle hold, byte and typed alike: the executor, the shared
// state, the writer's id, and the move and end-of-life rules. The public classes hold one and
// forward to it.

#include <bytecast/detail/broadcast_core.hpp>
#include <bytecast/detail/config.hpp>
#include <bytecast/detail/op_registry.hpp>
#include <bytecast/detail/read_op.hpp>
#include <bytecast/detail/reader_queue.hpp>
#include <bytecast/detail/write_op.hpp>
#include <bytecast/options.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

BYTECAST_NAMESPACE_BEGIN
namespace detail {

// One counter for every writer kind (byte and typed): the first writer gets 1. Relaxed: only
// uniqueness matters.
[[nodiscard]] inline std::uint64_t next_writer_id() noexcept {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

// A writer: moves leave the source without a core (its calls then fail with bad_descriptor);
// destruction and move assignment close the writer they end.
template <class Item, class Executor>
class writer_state {
 public:
  using core_type = broadcast_core<Item>;
  using queue_type = reader_queue<Item>;

  // Strong: if getting the context's service or allocating the core throws, nothing is made (and
  // no id is used up).
  writer_state(const Executor& ex, const writer_options& options)
      : executor_(ex), core_(std::make_shared<core_type>(registry_for(ex), options)), id_(next_writer_id()) {}

  writer_state(writer_state&& other) noexcept
      : executor_(other.executor_), core_(std::move(other.core_)), id_(other.id_) {}

  writer_state& operator=(writer_state&& other) noexcept {
    if (this != &other) {
      close();
      executor_ = other.executor_;
      core_ = std::move(other.core_);
      id_ = other.id_;
    }
    return *this;
  }

  ~writer_state() { close(); }

  [[nodiscard]] const Executor& executor() const noexcept { return executor_; }
  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
  // Null on a moved-from writer.
  [[nodiscard]] const std::shared_ptr<core_type>& core() const noexcept { return core_; }

  void close(const error_code& reason = {}) noexcept {
    if (core_) core_->close(reason);
  }
  [[nodiscard]] bool is_open() const noexcept { return core_ && core_->is_open(); }
  [[nodiscard]] std::size_t stream_count() const noexcept { return core_ ? core_->stream_count() : 0; }

  // A queue for a new stream (null on a moved-from writer). Strong.
  [[nodiscard]] std::shared_ptr<queue_type> subscribe(const stream_options& o) {
    return core_ ? core_->subscribe(o) : nullptr;
  }

  // Starts a wait until at least `n` streams are live, or (`for_none`) until none is:
  // `void(error_code)`.
  template <class CompletionToken>
  auto async_wait_streams(CompletionToken&& token, std::size_t n, bool for_none) {
    return asio::async_initiate<CompletionToken, void(error_code)>(initiate_stream_wait{this}, token, n, for_none);
  }

 private:
  struct initiate_stream_wait {
    writer_state* self;
    using executor_type = Executor;
    [[nodiscard]] executor_type get_executor() const noexcept { return self->executor_; }

    template <class Handler>
    void operator()(Handler&& handler, std::size_t n, bool for_none) const {
      start_stream_wait(self->core_, self->executor_, n, for_none, std::forward<Handler>(handler));
    }
  };

  Executor executor_;
  std::shared_ptr<core_type> core_;
  std::uint64_t id_;
};

// A stream: moves leave the source without a queue (its reads fail with bad_descriptor);
// destruction and move assignment detach the stream they end, releasing its backlog and aborting
// its pending read.
template <class Item, class Executor>
class stream_state {
 public:
  using queue_type = reader_queue<Item>;

  stream_state(const Executor& ex, std::shared_ptr<queue_type> queue, std::uint64_t writer_id) noexcept
      : executor_(ex), queue_(std::move(queue)), writer_id_(writer_id) {}

  stream_state(stream_state&& other) noexcept
      : executor_(other.executor_),
        queue_(std::move(other.queue_)),
        writer_id_(other.writer_id_),
        ready_in_a_row_(other.ready_in_a_row_) {}

  stream_state& operator=(stream_state&& other) noexcept {
    if (this != &other) {
      detach();
      executor_ = other.executor_;
      queue_ = std::move(other.queue_);
      writer_id_ = other.writer_id_;
      ready_in_a_row_ = other.ready_in_a_row_;
    }
    return *this;
  }

  ~stream_state() { detach(); }

  [[nodiscard]] const Executor& executor() const noexcept { return executor_; }
  [[nodiscard]] std::uint64_t writer_id() const noexcept { return writer_id_; }
  // Null on a moved-from stream.
  [[nodiscard]] const std::shared_ptr<queue_type>& queue() const noexcept { return queue_; }

  // Starts an asynchronous read whose `Taker` says what it completes with:
  // `void(error_code, Taker::value_type)`.
  template <class CompletionToken, class Taker>
  auto async_read(CompletionToken&& token, Taker taker) {
    return asio::async_initiate<CompletionToken, void(error_code, typename Taker::value_type)>(
        initiate_read<Taker>{this}, token, std::move(taker));
  }

  // The synchronous twin: `would_block` when nothing is queued.
  template <class Taker>
  [[nodiscard]] typename Taker::value_type try_read(Taker taker, error_code& ec) {
    return detail::try_read(queue_, std::move(taker), ec);
  }

  // For coroutines: the next item, thrown errors. A queued item is returned without a trip through
  // the executor, except that every `yield_every`-th call in a row first goes through it once
  // (post), so that a long backlog cannot starve the rest of the thread; a cancellation meanwhile
  // takes nothing. With nothing queued it waits like async_read.
  static constexpr unsigned yield_every = 64;

  template <class Taker>
  asio::awaitable<typename Taker::value_type> next(Taker taker) {
    if (++ready_in_a_row_ == yield_every) {
      ready_in_a_row_ = 0;
      co_await asio::defer(asio::use_awaitable); // to the back of the queue, as a continuation
      const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
      if (state.cancelled() != asio::cancellation_type::none)
        throw system_error(asio::error::operation_aborted, "bytecast::next");
    }
    error_code ec;
    auto value = detail::try_read(queue_, taker, ec);
    if (!ec) co_return value;
    ready_in_a_row_ = 0;
    if (ec != asio::error::would_block) throw system_error(ec, "bytecast::next");
    co_return co_await async_read(asio::use_awaitable, std::move(taker));
  }

 private:
  template <class Taker>
  struct initiate_read {
    stream_state* self;
    using executor_type = Executor;
    [[nodiscard]] executor_type get_executor() const noexcept { return self->executor_; }

    template <class Handler>
    void operator()(Handler&& handler, Taker taker) const {
      start_read(self->queue_, self->executor_, std::move(taker), std::forward<Handler>(handler));
    }
  };

  void detach() noexcept {
    if (queue_) std::exchange(queue_, nullptr)->detach();
  }

  Executor executor_;
  std::shared_ptr<queue_type> queue_;
  std::uint64_t writer_id_ = 0;
  unsigned ready_in_a_row_ = 0; // next(): items returned without a trip through the executor
};

} // namespace detail
BYTECAST_NAMESPACE_END

#endif // BYTECAST_DETAIL_HANDLES_HPP
