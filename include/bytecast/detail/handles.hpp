// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_HANDLES_HPP
#define BYTECAST_DETAIL_HANDLES_HPP

#include <bytecast/detail/broadcast_core.hpp>
#include <bytecast/detail/config.hpp>
#include <bytecast/detail/reader_queue.hpp>
#include <bytecast/options.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

namespace bytecast::detail {

// What byte and typed writers share: the executor, the core, the id, and the
// move, close-on-destruction and counting rules. The public classes add writes.
// Every member here is nothrow, except the constructor and subscribe()
// (strong) and close() (see there).
template <class Item, class Executor>
class writer_handle {
 public:
  using executor_type = Executor;

  writer_handle(const writer_handle&) = delete;
  writer_handle& operator=(const writer_handle&) = delete;

  /// The executor given at construction. Nothrow.
  [[nodiscard]] executor_type get_executor() const noexcept { return executor_; }

  /// Process-unique, one counter for byte and typed writers: 1 for the first writer, then 2, 3, ...
  /// Nothrow.
  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }

  /// Idempotent: every live stream gets, after what was written before, one end marker.
  /// Nothrow. Writes parked by a bounded `wait` writer complete with
  /// `broken_pipe`; if even posting such a completion runs out of memory, that
  /// operation is destroyed with its handler, unrun.
  void close() {
    if (core_) core_->close();
  }

  /// False once closed (or moved from). Nothrow.
  [[nodiscard]] bool is_open() const noexcept { return core_ && core_->is_open(); }

  /// Live streams. A destroyed stream stops counting no later than the next write or close.
  /// Nothrow (takes the writer's lock).
  [[nodiscard]] std::size_t stream_count() const noexcept { return core_ ? core_->stream_count() : 0; }

 protected:
  using core_type = broadcast_core<Item>;

  // Strong: if getting the context's service or allocating the core throws,
  // nothing is made (and no id is used up).
  writer_handle(const executor_type& ex, const writer_options& options)
      : executor_(ex), core_(std::make_shared<core_type>(registry_for(ex), options)), id_(next_writer_id()) {}

  writer_handle(writer_handle&& other) noexcept
      : executor_(other.executor_), core_(std::move(other.core_)), id_(other.id_) {}

  // Nothrow: closes this writer first (see close()), then takes `other`'s core.
  writer_handle& operator=(writer_handle&& other) noexcept {
    if (this != &other) {
      close();
      executor_ = other.executor_;
      core_ = std::move(other.core_);
      id_ = other.id_;
    }
    return *this;
  }

  // Same as close(): live streams still get everything, then the end marker.
  // Nothrow.
  ~writer_handle() { close(); }

  // A queue for a new stream (null on a moved-from writer).
  [[nodiscard]] std::shared_ptr<reader_queue<Item>> subscribe(bool replay) {
    return core_ ? core_->subscribe(replay) : nullptr;
  }

  executor_type executor_;
  std::shared_ptr<core_type> core_;
  std::uint64_t id_;
};

// What byte and typed streams share: the executor, the queue, the writer's id,
// and the move and detach-on-destruction rules. The public classes add reads.
// Every member here is nothrow.
template <class Item, class Executor>
class stream_handle {
 public:
  using executor_type = Executor;

  stream_handle(const stream_handle&) = delete;
  stream_handle& operator=(const stream_handle&) = delete;

  /// The executor of the writer this stream came from. Nothrow.
  [[nodiscard]] executor_type get_executor() const noexcept { return executor_; }

  /// The `id()` of the writer this stream came from. Nothrow.
  [[nodiscard]] std::uint64_t writer_id() const noexcept { return writer_id_; }

  /// What this stream lost to a `drop_oldest` writer, in total (bytes, or items for typed streams).
  /// Nothrow (takes the stream's lock).
  [[nodiscard]] std::uint64_t dropped() const { return queue_ ? queue_->dropped() : 0; }

 protected:
  using queue_type = reader_queue<Item>;

  stream_handle(const executor_type& ex, std::shared_ptr<queue_type> queue, std::uint64_t writer_id)
      : executor_(ex), queue_(std::move(queue)), writer_id_(writer_id) {}

  stream_handle(stream_handle&& other) noexcept
      : executor_(other.executor_), queue_(std::move(other.queue_)), writer_id_(other.writer_id_) {}

  // Nothrow: detaches this stream first (as the destructor does), then takes `other`'s queue.
  stream_handle& operator=(stream_handle&& other) noexcept {
    if (this != &other) {
      detach();
      executor_ = other.executor_;
      queue_ = std::move(other.queue_);
      writer_id_ = other.writer_id_;
    }
    return *this;
  }

  // Detaches from the writer, releasing the backlog; a pending read completes
  // with operation_aborted. Nothrow.
  ~stream_handle() { detach(); }

  void detach() noexcept {
    if (queue_) std::exchange(queue_, nullptr)->detach();
  }

  // Starts a read on this stream (see start_read); the initiation object of
  // every async read of the derived streams.
  template <class Taker>
  struct initiate_read {
    stream_handle* self;
    using executor_type = Executor;
    [[nodiscard]] executor_type get_executor() const noexcept { return self->executor_; }

    template <class Handler>
    void operator()(Handler&& handler, Taker taker) const {
      start_read(self->queue_, self->executor_, std::move(taker), std::forward<Handler>(handler));
    }
  };

  executor_type executor_;
  std::shared_ptr<queue_type> queue_;
  std::uint64_t writer_id_ = 0;
};

} // namespace bytecast::detail

#endif // BYTECAST_DETAIL_HANDLES_HPP
