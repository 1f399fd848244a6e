// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_READER_QUEUE_HPP
#define BYTECAST_DETAIL_READER_QUEUE_HPP

#include <bytecast/chunk.hpp>
#include <bytecast/detail/completion.hpp>
#include <bytecast/detail/config.hpp>
#include <bytecast/detail/ring.hpp>
#include <bytecast/detail/stream_service.hpp>
#include <bytecast/error.hpp>
#include <bytecast/options.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>

namespace bytecast::detail {

// A queued chunk in 8 bytes (a chunk handle takes 24): the block it holds one
// reference of. Every chunk a writer makes is a whole block, so the block
// alone says where its bytes are. A queue holds one slot per chunk per
// stream, so this is most of what a queued chunk costs beyond its bytes.
class chunk_slot {
 public:
  explicit chunk_slot(chunk&& c) noexcept : block_(chunk_access::release(c)) {}
  chunk_slot(chunk_slot&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
  chunk_slot& operator=(chunk_slot&&) = delete;
  ~chunk_slot() {
    if (block_ != nullptr) block_->release();
  }

  [[nodiscard]] std::size_t size() const noexcept { return block_ == nullptr ? 0 : block_->size(); }
  [[nodiscard]] const std::byte* data() const noexcept { return block_ == nullptr ? nullptr : block_->payload(); }

  // The chunk, taking this slot's reference (the slot is left empty).
  [[nodiscard]] chunk take() noexcept {
    return block_ == nullptr ? chunk{} : chunk_access::adopt(std::exchange(block_, nullptr));
  }
  // The bytes from `offset` on, with a reference of their own.
  [[nodiscard]] chunk tail(std::size_t offset) const noexcept { return chunk_access::tail_of(block_, offset); }

 private:
  chunk_block* block_;
};

// How an item counts against a queue's limit, how the writer hands one item
// to many queues (values are copied, chunks share their bytes), and what a
// queue stores for it.
template <class Item>
struct item_traits {
  using slot_type = Item;
  [[nodiscard]] static std::size_t weight(const Item&) noexcept { return 1; }
  static void reserve_copies(const Item&, std::size_t) noexcept {}
  [[nodiscard]] static Item copy(const Item& item) { return item; }
};

template <>
struct item_traits<chunk> {
  using slot_type = chunk_slot;
  [[nodiscard]] static std::size_t weight(const chunk& c) noexcept { return c.size(); }
  [[nodiscard]] static std::size_t weight(const chunk_slot& s) noexcept { return s.size(); }
  // One atomic add for all the streams of a write, not one per stream.
  static void reserve_copies(const chunk& c, std::size_t n) noexcept { chunk_access::add_refs(c, n); }
  [[nodiscard]] static chunk copy(const chunk& c) noexcept { return chunk_access::alias(c); }
};

// What a read reports when it has no item: the states after the last item.
enum class signal { none, lagged, sentinel, eof, overflowed };

// Where a stream's end stands.
enum class end_state {
  open,      // the writer may write more
  closed,    // the writer closed; the sentinel is still to be delivered
  finished,  // the sentinel was delivered: reads give eof
  overflowed // cut off by a `disconnect` writer: reads give error::overflowed
};

// Told when a reader made room in its queue (bounded `wait` writers only).
class space_listener {
 public:
  virtual void on_space() = 0;

 protected:
  ~space_listener() = default;
};

struct no_current {};

// One reader's queue, in two parts. The writer appends to the shared part under
// `mutex_`. The reader moves what is there into its own batch in one step (an
// unbounded queue hands over everything, a bounded one item by item, so that
// the limit still applies to what is queued) and then reads the batch without
// any lock. Items are taken only by the reading side, never by the writer on
// its behalf, so a cancelled read never loses an item.
//
// The reading side is whoever holds the read position (`acquire_reader`): an
// operation from its start until just before its handler runs, or `try_next`.
template <class Item>
class reader_queue final : public queue_base {
 public:
  using traits = item_traits<Item>;
  using slot_type = typename traits::slot_type;

  reader_queue(std::shared_ptr<op_registry> registry, const writer_options& options)
      : queue_base(std::move(registry)), limit_(options.queue_limit), policy_(options.on_overflow) {}
  ~reader_queue() { unregister(); }

  // --- The writer's side (with the writer's lock held). ---

  // Called before anything of a write is delivered: makes sure push() will
  // not need to allocate. May throw (then the write delivers to nobody).
  void ensure_room() {
    if (!needs_room_) return;
    std::lock_guard lock(mutex_);
    if (shared_.full()) shared_.grow();
    needs_room_ = false;
  }

  // Returns false when the writer should forget this queue (the stream is gone
  // or was just disconnected). Never throws: ensure_room() ran first.
  // A parked read is marked scheduled and added to `wakes`, which the writer
  // posts once the write reached every queue.
  bool push(Item&& item, std::size_t weight, wake_list& wakes) noexcept(std::is_nothrow_move_constructible_v<Item>) {
    read_op_base* wake = nullptr;
    bool keep = true;
    {
      std::lock_guard lock(mutex_);
      if (dead()) return false;
      if (limit_ != 0 && !shared_.empty() && backlog_ + weight > limit_) {
        if (policy_ == overflow_policy::disconnect) {
          end_ = end_state::overflowed;
          dead_.store(true, std::memory_order_release);
          keep = false;
        } else if (policy_ == overflow_policy::drop_oldest) {
          while (!shared_.empty() && backlog_ + weight > limit_) {
            std::size_t lost = traits::weight(shared_.front());
            dropped_ += lost;
            backlog_ -= lost;
            shared_.pop_front();
          }
          // One lagged per gap: drops that follow a reported lagged before the
          // reader took anything widen the same gap.
          if (!gap_reported_) lagged_ = true;
        }
      }
      if (keep) {
        shared_.push_back(slot_type(std::move(item)));
        backlog_ += weight;
        // Keep one free slot for the next write; if that fails, the next
        // write makes room before it delivers anything.
        if (shared_.full()) {
          try {
            shared_.grow();
          } catch (...) {
            needs_room_ = true;
          }
        }
      }
      wake = wake_locked();
    }
    if (wake != nullptr) wakes.add(wake);
    return keep;
  }

  // True if an item of `weight` does not fit now (bounded writers only).
  [[nodiscard]] bool full_for(std::size_t weight) const {
    std::lock_guard lock(mutex_);
    return !dead() && !shared_.empty() && backlog_ + weight > limit_;
  }

  // The writer closed: the sentinel follows everything queued.
  void close() {
    read_op_base* wake = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (end_ != end_state::open) return;
      end_ = end_state::closed;
      wake = wake_locked();
    }
    if (wake != nullptr) post_or_free(wake);
  }

  // Fills a new queue before anyone can read it (replay).
  void preload(const Item& item) {
    std::lock_guard lock(mutex_);
    shared_.push_back(slot_type(Item(item))); // a real copy: the replay window keeps its own
    backlog_ += traits::weight(item);
    if (shared_.full()) shared_.grow(); // push() relies on a free slot
  }

  void mark_closed() {
    std::lock_guard lock(mutex_);
    if (end_ == end_state::open) end_ = end_state::closed;
  }

  // Set before the queue is shared: whom to tell when the reader makes room.
  void set_listener(std::weak_ptr<space_listener> listener) noexcept { listener_ = std::move(listener); }

  // --- The stream handle's side. ---

  // The stream is gone: release the backlog now and abort a pending read.
  void detach() {
    read_op_base* post = nullptr;
    {
      std::lock_guard lock(mutex_);
      dead_.store(true, std::memory_order_release);
      detached_.store(true, std::memory_order_release);
      shared_.clear();
      backlog_ = 0;
      // A parked read must wake to see that the stream is gone; one already
      // posted sees it when it runs.
      if (op_ != nullptr && !std::exchange(op_->scheduled, true)) post = op_;
    }
    if (post != nullptr) post_or_free(post);
    // The batch belongs to the reading side: free it now unless an operation
    // still holds it (then it goes with the queue).
    if (acquire_reader()) {
      batch_.clear();
      batch_offset_ = 0;
      current_ = {};
      publish_batch_size();
      release_reader();
    }
    notify_space();
  }

  [[nodiscard]] std::size_t queued_items() const {
    std::lock_guard lock(mutex_);
    return shared_.size() + batch_items_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t queued_weight() const {
    std::lock_guard lock(mutex_);
    return backlog_ + batch_weight_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t dropped() const {
    std::lock_guard lock(mutex_);
    return dropped_;
  }

  // --- The reading side. ---

  // Takes the read position; false if another read holds it (already_started).
  [[nodiscard]] bool acquire_reader() noexcept { return !reading_.exchange(true, std::memory_order_acquire); }
  void release_reader() noexcept { reading_.store(false, std::memory_order_release); }

  [[nodiscard]] bool batch_empty() const noexcept { return batch_.empty(); }

  // With mutex_ held: whether a parked read has something to report.
  [[nodiscard]] bool has_news_locked() const noexcept {
    return lagged_ || !shared_.empty() || end_ != end_state::open;
  }

  // With mutex_ held and an empty batch: moves what the writer queued into the
  // batch, or reports the signal that comes instead (consuming it). Returns
  // signal::none with an empty batch when the read has to wait.
  [[nodiscard]] signal refill_locked() {
    if (lagged_) {
      lagged_ = false;
      gap_reported_ = true;
      return signal::lagged;
    }
    if (!shared_.empty()) {
      gap_reported_ = false;
      std::size_t moved = backlog_;
      if (limit_ == 0) {
        batch_.swap(shared_);
      } else {
        moved = traits::weight(shared_.front());
        batch_.push_back(std::move(shared_.front()));
        shared_.pop_front();
      }
      backlog_ -= moved;
      batch_weight_sum_ += moved;
      publish_batch_size();
      refilled_ = true;
      return signal::none;
    }
    switch (end_) {
      case end_state::open:
        return signal::none;
      case end_state::closed:
        end_ = end_state::finished;
        return signal::sentinel;
      case end_state::finished:
        return signal::eof;
      case end_state::overflowed:
        break;
    }
    return signal::overflowed;
  }

  // After a refill, outside the lock: a bounded `wait` writer may now have room.
  void after_refill() {
    if (std::exchange(refilled_, false)) notify_space();
  }

  // Removes and returns the front of the batch (the unread rest of it, for chunks).
  [[nodiscard]] Item pop_batch() {
    Item item = [this] {
      if constexpr (std::is_same_v<Item, chunk>) {
        return batch_offset_ == 0 ? batch_.front().take() : batch_.front().tail(batch_offset_);
      } else {
        return std::move(batch_.front());
      }
    }();
    batch_.pop_front();
    batch_offset_ = 0;
    batch_weight_sum_ -= traits::weight(item);
    publish_batch_size();
    return item;
  }

  // Copies up to `buffers`' size from the front of the batch; returns the count.
  template <class MutableBufferSequence>
  std::size_t copy_from_batch(const MutableBufferSequence& buffers) {
    static_assert(std::is_same_v<Item, chunk>);
    std::size_t copied = 0;
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
      asio::mutable_buffer target(*it);
      while (target.size() != 0 && !batch_.empty()) {
        const chunk_slot& front = batch_.front();
        std::size_t n = std::min(target.size(), front.size() - batch_offset_);
        std::memcpy(target.data(), front.data() + batch_offset_, n);
        target += n;
        copied += n;
        batch_offset_ += n;
        batch_weight_sum_ -= n;
        if (batch_offset_ == front.size()) {
          batch_.pop_front();
          batch_offset_ = 0;
        }
      }
      if (batch_.empty()) break;
    }
    publish_batch_size();
    return copied;
  }

  void set_current(chunk c) noexcept
    requires std::is_same_v<Item, chunk>
  {
    current_ = std::move(c);
  }
  [[nodiscard]] std::span<const std::byte> current_bytes() const noexcept
    requires std::is_same_v<Item, chunk>
  {
    return current_.bytes();
  }

 private:
  void notify_space() const {
    if (listener_.expired()) return;
    if (auto l = listener_.lock()) l->on_space();
  }

  // Mirrors the batch's size for the thread-safe snapshots.
  void publish_batch_size() noexcept {
    batch_items_.store(batch_.size(), std::memory_order_relaxed);
    batch_weight_.store(batch_weight_sum_, std::memory_order_relaxed);
  }

  static constexpr std::size_t initial_capacity = 8;

  const std::size_t limit_;
  const overflow_policy policy_;
  std::weak_ptr<space_listener> listener_; // set once, before the queue is shared

  bool needs_room_ = false; // guarded by the writer's lock: shared_ is full

  // Guarded by mutex_ (the writer's side):
  ring<slot_type> shared_{initial_capacity};
  std::size_t backlog_ = 0; // weight of shared_
  end_state end_ = end_state::open;
  bool lagged_ = false;       // a drop_oldest overflow happened since the last read
  bool gap_reported_ = false; // lagged was reported and nothing was read since
  std::uint64_t dropped_ = 0; // weight lost to drop_oldest, in total

  // Owned by the reading side (see acquire_reader), kept on their own cache line
  // so the writer's appends and the reader's reads do not share one.
  alignas(64) std::atomic<bool> reading_{false};
  ring<slot_type> batch_{initial_capacity};
  std::size_t batch_offset_ = 0;     // bytes of batch_.front() already read
  std::size_t batch_weight_sum_ = 0; // unread weight of batch_
  bool refilled_ = false;
  std::atomic<std::size_t> batch_items_{0};
  std::atomic<std::size_t> batch_weight_{0};
  // The chunk behind the span of the last async_next/try_next on a byte stream.
  [[no_unique_address]] std::conditional_t<std::is_same_v<Item, chunk>, chunk, no_current> current_{};
};

// --- Takers: what one kind of read makes of the batch, or of a signal. ---------

// async_next / try_next on a byte stream: the next chunk as a span.
struct next_span_taker {
  using value_type = std::span<const std::byte>;
  void from_batch(reader_queue<chunk>& q, error_code&, value_type& v) {
    q.set_current(q.pop_batch());
    v = q.current_bytes();
  }
  void from_signal(reader_queue<chunk>& q, signal s, error_code& ec, value_type&) {
    q.set_current({});
    ec = signal_error(s);
  }
  static error_code signal_error(signal s) noexcept {
    switch (s) {
      case signal::lagged:
        return error::lagged;
      case signal::eof:
        return asio::error::eof;
      case signal::overflowed:
        return error::overflowed;
      case signal::none:
      case signal::sentinel:
        break;
    }
    return {};
  }
};

// async_next_chunk on a byte stream, and async_next / try_next on typed streams.
template <class Item, class Value>
struct next_item_taker {
  using value_type = Value;
  void from_batch(reader_queue<Item>& q, error_code&, value_type& v) {
    if constexpr (std::is_same_v<Value, std::optional<Item>>)
      v.emplace(q.pop_batch()); // T need not be assignable
    else
      v = q.pop_batch();
  }
  void from_signal(reader_queue<Item>&, signal s, error_code& ec, value_type&) {
    ec = next_span_taker::signal_error(s);
  }
};

// async_read_some: bytes copied from the front of the backlog; the sentinel reads as eof.
template <class MutableBufferSequence>
struct read_some_taker {
  using value_type = std::size_t;
  MutableBufferSequence buffers;
  [[nodiscard]] bool nothing_to_read() const { return asio::buffer_size(buffers) == 0; }
  void from_batch(reader_queue<chunk>& q, error_code&, value_type& v) { v = q.copy_from_batch(buffers); }
  void from_signal(reader_queue<chunk>&, signal s, error_code& ec, value_type&) {
    ec = s == signal::sentinel ? error_code(asio::error::eof) : next_span_taker::signal_error(s);
  }
};

template <class Taker>
[[nodiscard]] bool reads_nothing(const Taker& taker) {
  if constexpr (requires { taker.nothing_to_read(); })
    return taker.nothing_to_read();
  else
    return false;
}

// What a read found: `ready` when it has a result in (ec, value).
enum class take_result { ready, wait };

// With the read position held and mutex_ held: fills (ec, value) from the batch
// or a signal, or reports that the read has to wait. The batch part runs after
// `lock` is released.
template <class Item, class Taker>
take_result take_locked(reader_queue<Item>& q, std::unique_lock<std::mutex>& lock, Taker& taker, error_code& ec,
                        typename Taker::value_type& value) {
  signal s = q.refill_locked();
  if (s == signal::none && q.batch_empty()) return take_result::wait;
  lock.unlock();
  if (s != signal::none) {
    taker.from_signal(q, s, ec, value);
  } else {
    q.after_refill();
    taker.from_batch(q, ec, value);
  }
  return take_result::ready;
}

// --- The completions. --------------------------------------------------------------

template <class Queue>
struct read_cancellation {
  read_cancellation(Queue* q, read_op_base* o) noexcept : queue(q), op(o) {}
  Queue* queue;
  read_op_base* op;
  void operator()(asio::cancellation_type_t type) {
    if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                 asio::cancellation_type::total)) != asio::cancellation_type::none)
      queue->cancel(op);
  }
};

// A read parked on an empty queue until the writer (or a cancellation) wakes it.
template <class Queue, class Taker, class Handler, class IoExecutor>
class read_op final : public read_op_base {
 public:
  using value_type = typename Taker::value_type;
  using handler_executor = asio::associated_executor_t<Handler, IoExecutor>;
  using work_executor = std::decay_t<decltype(asio::prefer(std::declval<const handler_executor&>(),
                                                           asio::execution::outstanding_work.tracked))>;
  using allocator_type = typename std::allocator_traits<
      asio::associated_allocator_t<Handler, asio::recycling_allocator<void>>>::template rebind_alloc<read_op>;

  static read_op* create(Handler&& handler, const IoExecutor& io_ex, std::shared_ptr<Queue> queue, Taker taker) {
    allocator_type alloc(asio::get_associated_allocator(handler, asio::recycling_allocator<void>()));
    read_op* p = std::allocator_traits<allocator_type>::allocate(alloc, 1);
    try {
      return ::new (static_cast<void*>(p)) read_op(std::move(handler), io_ex, std::move(queue), std::move(taker));
    } catch (...) {
      std::allocator_traits<allocator_type>::deallocate(alloc, p, 1);
      throw;
    }
  }

  asio::cancellation_slot slot_;

  [[nodiscard]] const Taker& taker() const noexcept { return taker_; }

  // Posts the operation as a continuation of the caller (it starts the read).
  // It is queued on the executor at once, which keeps the executor busy: no
  // outstanding-work count is needed.
  void defer() { asio::defer(executor_, op_runner<read_op_base>(this)); }

  // Called before the operation parks: while it waits, it counts as
  // outstanding work (a pending read keeps `io_context::run()` going). Only a
  // parked read can be woken with others (wake_list): its context is looked
  // up here, not for every read.
  void track_work() {
    work_.emplace(asio::prefer(executor_, asio::execution::outstanding_work.tracked));
    context_ = context_key(executor_);
  }

 private:
  read_op(Handler&& handler, const IoExecutor& io_ex, std::shared_ptr<Queue> queue, Taker taker)
      : read_op_base(&read_op::do_action),
        handler_(std::move(handler)),
        executor_(asio::get_associated_executor(handler_, io_ex)),
        queue_(std::move(queue)),
        taker_(std::move(taker)) {}

  [[nodiscard]] allocator_type get_allocator() const noexcept {
    return allocator_type(asio::get_associated_allocator(handler_, asio::recycling_allocator<void>()));
  }

  static bool do_action(read_op_base* base, action a) {
    auto* self = static_cast<read_op*>(base);
    switch (a) {
      case action::post:
        asio::post(self->executor_, op_runner<read_op_base>(self));
        return false;
      case action::post_chain:
        asio::post(detail::chain_executor(self->executor_), chain_runner(self));
        return false;
      case action::defer:
        asio::defer(self->executor_, op_runner<read_op_base>(self));
        return false;
      case action::run:
        self->complete();
        return false;
      case action::outside:
        return detail::called_from_outside(self->executor_);
      case action::destroy: {
        {
          std::lock_guard lock(self->queue_->mutex_);
          if (self->queue_->op_ == self) self->queue_->op_ = nullptr;
        }
        if (self->slot_.is_connected()) self->slot_.clear();
        // Destroy the handler only after the memory is released: it may own it.
        allocator_type alloc = self->get_allocator();
        [[maybe_unused]] Handler handler(std::move(self->handler_));
        self->~read_op();
        std::allocator_traits<allocator_type>::deallocate(alloc, self, 1);
        return false;
      }
    }
    return false;
  }

  // Runs on the handler's executor: the item is taken here, on the reader's
  // side, unless the read was cancelled (or its stream destroyed) first.
  void complete() {
    Queue& q = *queue_;
    error_code ec;
    value_type value{};
    if (cancel_requested() || q.detached()) {
      ec = asio::error::operation_aborted;
      std::lock_guard lock(q.mutex_);
      if (q.op_ == this) q.op_ = nullptr;
    } else if (reads_nothing(taker_)) {
      // a zero-size read: 0 bytes, nothing taken
    } else if (!q.batch_empty()) {
      taker_.from_batch(q, ec, value);
    } else {
      std::unique_lock lock(q.mutex_);
      if (q.op_ == this) q.op_ = nullptr;
      if (cancel_requested() || q.detached()) {
        // Cancelled, or the stream destroyed (on another thread), after the
        // check above: detach() and cancel() saw this read as scheduled and
        // left it to us, so it must not park again.
        ec = asio::error::operation_aborted;
      } else if (take_locked(q, lock, taker_, ec, value) == take_result::wait) {
        q.op_ = this; // woken for nothing: park again
        scheduled = false;
        return;
      }
    }
    q.release_reader();
    if (slot_.is_connected()) slot_.clear();
    // The memory goes back before the handler runs, so that the next read of a
    // loop reuses it (Asio's recycling allocator).
    allocator_type alloc = get_allocator();
    Handler handler(std::move(handler_));
    std::optional<work_executor> work(std::move(work_));
    std::shared_ptr<Queue> keep(std::move(queue_)); // the span points into it
    this->~read_op();
    std::allocator_traits<allocator_type>::deallocate(alloc, this, 1);
    std::move(handler)(ec, std::move(value));
  }

  Handler handler_;
  handler_executor executor_;
  std::optional<work_executor> work_; // only while parked
  std::shared_ptr<Queue> queue_;
  Taker taker_;
};

// Starts a read. It always completes through an operation that runs on the
// handler's executor and takes its item there, so that a cancellation arriving
// before it runs (as `||` does when a timer wins) takes nothing: the item stays
// for the next read. With something to report the operation is posted at once
// (a continuation of the caller); otherwise it parks until the writer wakes it.
template <class Queue, class Taker, class Handler, class IoExecutor>
void start_read(const std::shared_ptr<Queue>& queue, const IoExecutor& io_ex, Taker taker, Handler&& handler) {
  using handler_type = std::decay_t<Handler>;
  using value_type = typename Taker::value_type;
  if (!queue) {
    post_completion(io_ex, std::forward<Handler>(handler), error_code(asio::error::bad_descriptor), value_type{});
    return;
  }
  if (!queue->acquire_reader()) {
    post_completion(io_ex, std::forward<Handler>(handler), error_code(asio::error::already_started),
                    value_type{});
    return;
  }
  // From here on this read holds the read position, and with it the batch.
  handler_type h(std::forward<Handler>(handler));
  auto slot = asio::get_associated_cancellation_slot(h);
  using op_type = read_op<Queue, Taker, handler_type, IoExecutor>;
  op_type* op;
  try {
    op = op_type::create(std::move(h), io_ex, queue, std::move(taker));
  } catch (...) {
    queue->release_reader();
    throw;
  }
  if (slot.is_connected()) {
    op->slot_ = slot;
    try {
      slot.template emplace<read_cancellation<Queue>>(queue.get(), op);
    } catch (...) {
      op->destroy();
      queue->release_reader();
      throw;
    }
  }
  bool ready = reads_nothing(op->taker()) || !queue->batch_empty();
  if (!ready) {
    std::lock_guard lock(queue->mutex_);
    ready = queue->has_news_locked();
    if (!ready) {
      op->track_work();
      queue->op_ = op; // parked: the writer posts it
    }
  }
  if (ready) {
    op->scheduled = true;
    try {
      op->defer();
    } catch (...) {
      queue->release_reader(); // the runner destroyed the operation: nothing was taken
      throw;
    }
  }
}

// try_next: the synchronous twin of start_read; would_block when nothing is queued.
template <class Queue, class Taker>
typename Taker::value_type try_read(const std::shared_ptr<Queue>& queue, Taker taker, error_code& ec) {
  typename Taker::value_type value{};
  ec = {};
  if (!queue) {
    ec = asio::error::bad_descriptor;
    return value;
  }
  if (!queue->acquire_reader()) {
    ec = asio::error::already_started;
    return value;
  }
  struct release_on_exit {
    Queue& q;
    ~release_on_exit() { q.release_reader(); }
  } release{*queue}; // also when a typed value's move throws
  if (!queue->batch_empty()) {
    taker.from_batch(*queue, ec, value);
  } else {
    std::unique_lock lock(queue->mutex_);
    if (take_locked(*queue, lock, taker, ec, value) == take_result::wait) ec = asio::error::would_block;
  }
  return value;
}

} // namespace bytecast::detail

#endif // BYTECAST_DETAIL_READER_QUEUE_HPP
