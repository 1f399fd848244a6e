// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_READER_QUEUE_HPP
#define BYTECAST_DETAIL_READER_QUEUE_HPP

#include <bytecast/chunk.hpp>
#include <bytecast/detail/completion.hpp>
#include <bytecast/detail/config.hpp>
#include <bytecast/detail/stream_service.hpp>
#include <bytecast/error.hpp>
#include <bytecast/options.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <system_error>
#include <type_traits>
#include <utility>

namespace bytecast::detail {

// How much of a queue's limit an item uses: bytes for chunks, one for values.
template <class Item>
struct item_traits {
  [[nodiscard]] static std::size_t weight(const Item&) noexcept { return 1; }
};

template <>
struct item_traits<chunk> {
  [[nodiscard]] static std::size_t weight(const chunk& c) noexcept { return c.size(); }
};

// What a read finds at the front of a queue.
enum class read_state { item, lagged, sentinel, eof, overflowed, empty };

// Where a stream's end stands.
enum class end_state {
  open,      // the writer may write more
  closed,    // the writer closed; the sentinel is still to be delivered
  finished,  // the sentinel was delivered: reads give eof
  overflowed // cut off by a `disconnect` writer: reads give error::overflowed
};

struct no_current {};

// Told when a reader made room in its queue (bounded `wait` writers only).
class space_listener {
 public:
  virtual void on_space() = 0;

 protected:
  ~space_listener() = default;
};

// One reader's backlog: the writer pushes, the reader's operations take. Items are
// taken only by the reader's side (its operations run on its executor), never
// by the writer on its behalf, so a cancelled read never loses an item.
template <class Item>
class reader_queue final : public queue_base {
 public:
  using item_type = Item;
  using traits = item_traits<Item>;

  explicit reader_queue(std::shared_ptr<op_registry> registry) : queue_base(std::move(registry)) {}
  ~reader_queue() { unregister(); }

  // Set before the queue is shared: whom to tell when the reader makes room.
  void set_listener(std::weak_ptr<space_listener> listener) noexcept { listener_ = std::move(listener); }

  // Called by the reading side after it took something (never with mutex_ held).
  void notify_space() const {
    if (listener_.expired()) return;
    if (auto l = listener_.lock()) l->on_space();
  }

  // Called with the writer's lock held. Returns false when the writer should
  // forget this queue (the stream is gone or was just disconnected).
  bool push(Item&& item, std::size_t weight, const writer_options& options) {
    read_op_base* wake = nullptr;
    bool keep = true;
    {
      std::lock_guard lock(mutex_);
      if (dead()) return false;
      if (options.queue_limit != 0 && !items_.empty() && backlog_ + weight > options.queue_limit) {
        if (options.on_overflow == overflow_policy::disconnect) {
          end_ = end_state::overflowed;
          dead_.store(true, std::memory_order_release);
          keep = false;
        } else if (options.on_overflow == overflow_policy::drop_oldest) {
          while (!items_.empty() && backlog_ + weight > options.queue_limit) drop_front_locked();
          lagged_ = true;
        }
      }
      if (keep) {
        items_.push_back(std::move(item));
        backlog_ += weight;
      }
      wake = wake_locked();
    }
    if (wake != nullptr) wake->post();
    return keep;
  }

  // True if a chunk of `weight` would not fit (bounded writers only).
  [[nodiscard]] bool full_for(std::size_t weight, std::size_t limit) const {
    std::lock_guard lock(mutex_);
    return !dead() && !items_.empty() && backlog_ + weight > limit;
  }

  // Called when the writer closes: the sentinel follows everything queued.
  void close() {
    read_op_base* wake = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (end_ != end_state::open) return;
      end_ = end_state::closed;
      wake = wake_locked();
    }
    if (wake != nullptr) wake->post();
  }

  // Preloads a new stream (replay, or a writer already closed); nothing waits yet.
  void preload(const Item& item, std::size_t weight, bool closed) {
    std::lock_guard lock(mutex_);
    items_.push_back(item);
    backlog_ += weight;
    if (closed) end_ = end_state::closed;
  }

  void mark_closed() {
    std::lock_guard lock(mutex_);
    if (end_ == end_state::open) end_ = end_state::closed;
  }

  // The stream handle is gone: release the backlog now and abort a pending read.
  void detach() {
    std::deque<Item> released;
    read_op_base* post = nullptr;
    {
      std::lock_guard lock(mutex_);
      dead_.store(true, std::memory_order_release);
      released.swap(items_);
      backlog_ = 0;
      front_offset_ = 0;
      current_ = {};
      if (op_ != nullptr) {
        op_->cancelled = true;
        if (!std::exchange(op_->scheduled, true)) post = op_;
      }
    }
    if (post != nullptr) post->post();
    notify_space();
  }

  // The following are called with mutex_ held, by the reading side.
  [[nodiscard]] read_state state_locked() const noexcept {
    if (lagged_) return read_state::lagged;
    if (!items_.empty()) return read_state::item;
    switch (end_) {
      case end_state::open:
        return read_state::empty;
      case end_state::closed:
        return read_state::sentinel;
      case end_state::finished:
        return read_state::eof;
      case end_state::overflowed:
        break;
    }
    return read_state::overflowed;
  }

  // Reports a state that carries no item; marks lagged/sentinel as delivered.
  [[nodiscard]] std::error_code consume_signal_locked(read_state s) noexcept {
    switch (s) {
      case read_state::lagged:
        lagged_ = false;
        return error::lagged;
      case read_state::sentinel:
        end_ = end_state::finished;
        return {};
      case read_state::eof:
        return asio::error::eof;
      case read_state::overflowed:
        return error::overflowed;
      case read_state::item:
      case read_state::empty:
        break;
    }
    return {};
  }

  // Removes and returns the front item (the unread rest of it, for chunks).
  [[nodiscard]] Item pop_front_locked() {
    Item item = [this] {
      if constexpr (std::is_same_v<Item, chunk>) {
        return front_offset_ == 0 ? std::move(items_.front()) : chunk_access::tail(items_.front(), front_offset_);
      } else {
        return std::move(items_.front());
      }
    }();
    items_.pop_front();
    backlog_ -= traits::weight(item);
    front_offset_ = 0;
    return item;
  }

  // Copies up to `buffers`' size from the front of a byte backlog; returns the count.
  template <class MutableBufferSequence>
  std::size_t copy_out_locked(const MutableBufferSequence& buffers) {
    static_assert(std::is_same_v<Item, chunk>);
    std::size_t copied = 0;
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
      asio::mutable_buffer target(*it);
      while (target.size() != 0 && !items_.empty()) {
        const chunk& front = items_.front();
        std::size_t n = std::min(target.size(), front.size() - front_offset_);
        std::memcpy(target.data(), front.data() + front_offset_, n);
        target += n;
        copied += n;
        front_offset_ += n;
        backlog_ -= n;
        if (front_offset_ == front.size()) {
          items_.pop_front();
          front_offset_ = 0;
        }
      }
      if (items_.empty()) break;
    }
    return copied;
  }

  void set_current_locked(chunk c) noexcept
    requires std::is_same_v<Item, chunk>
  {
    current_ = std::move(c);
  }
  [[nodiscard]] std::span<const std::byte> current_bytes_locked() const noexcept
    requires std::is_same_v<Item, chunk>
  {
    return current_.bytes();
  }

  [[nodiscard]] std::size_t queued_items() const {
    std::lock_guard lock(mutex_);
    return items_.size();
  }
  [[nodiscard]] std::size_t queued_weight() const {
    std::lock_guard lock(mutex_);
    return backlog_;
  }
  [[nodiscard]] std::uint64_t dropped() const {
    std::lock_guard lock(mutex_);
    return dropped_;
  }

 private:
  void drop_front_locked() {
    auto lost = traits::weight(items_.front()) - front_offset_;
    dropped_ += lost;
    backlog_ -= lost;
    front_offset_ = 0;
    items_.pop_front();
  }

  // All guarded by mutex_.
  std::deque<Item> items_;
  std::size_t backlog_ = 0;      // unread weight: bytes (chunks) or items
  std::size_t front_offset_ = 0; // bytes of items_.front() already read
  end_state end_ = end_state::open;
  bool lagged_ = false;        // a drop_oldest overflow happened since the last read
  std::uint64_t dropped_ = 0;  // weight lost to drop_oldest, in total
  std::weak_ptr<space_listener> listener_; // set once, before the queue is shared
  // The chunk behind the span of the last async_next/try_next on a byte stream.
  [[no_unique_address]] std::conditional_t<std::is_same_v<Item, chunk>, chunk, no_current> current_{};
};

// --- Takers: what one kind of read takes from a locked queue. -----------------
// `take` returns false when there is nothing to report yet (the read waits).

// async_next / try_next on a byte stream: the next chunk as a span.
struct next_span_taker {
  using value_type = std::span<const std::byte>;
  bool take(reader_queue<chunk>& q, std::error_code& ec, value_type& v) {
    auto s = q.state_locked();
    if (s == read_state::empty) return false;
    if (s == read_state::item) {
      q.set_current_locked(q.pop_front_locked());
      v = q.current_bytes_locked();
    } else {
      q.set_current_locked({});
      ec = q.consume_signal_locked(s);
    }
    return true;
  }
};

// async_next_chunk on a byte stream, and async_next / try_next on typed streams.
template <class Item, class Value>
struct next_item_taker {
  using value_type = Value;
  bool take(reader_queue<Item>& q, std::error_code& ec, value_type& v) {
    auto s = q.state_locked();
    if (s == read_state::empty) return false;
    if (s == read_state::item)
      v = q.pop_front_locked();
    else
      ec = q.consume_signal_locked(s);
    return true;
  }
};

// async_read_some: bytes copied from the front of the backlog; the sentinel reads as eof.
template <class MutableBufferSequence>
struct read_some_taker {
  using value_type = std::size_t;
  MutableBufferSequence buffers;
  bool take(reader_queue<chunk>& q, std::error_code& ec, value_type& v) {
    if (asio::buffer_size(buffers) == 0) return true;
    auto s = q.state_locked();
    if (s == read_state::empty) return false;
    if (s == read_state::item) {
      v = q.copy_out_locked(buffers);
    } else {
      ec = q.consume_signal_locked(s);
      if (s == read_state::sentinel) ec = asio::error::eof;
    }
    return true;
  }
};

// --- The waiting operation. ------------------------------------------------------

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

 private:
  read_op(Handler&& handler, const IoExecutor& io_ex, std::shared_ptr<Queue> queue, Taker taker)
      : read_op_base(&read_op::do_action),
        handler_(std::move(handler)),
        work_(asio::prefer(asio::get_associated_executor(handler_, io_ex), asio::execution::outstanding_work.tracked)),
        queue_(std::move(queue)),
        taker_(std::move(taker)) {}

  [[nodiscard]] allocator_type get_allocator() const noexcept {
    return allocator_type(asio::get_associated_allocator(handler_, asio::recycling_allocator<void>()));
  }

  // Frees the operation's memory; the handler must have been moved out.
  static void free(read_op* self, allocator_type alloc) noexcept {
    self->~read_op();
    std::allocator_traits<allocator_type>::deallocate(alloc, self, 1);
  }

  static void do_action(read_op_base* base, action a) {
    auto* self = static_cast<read_op*>(base);
    switch (a) {
      case action::post: {
        work_executor ex = self->work_;
        asio::post(ex, op_runner<read_op_base>(self));
        return;
      }
      case action::run:
        return self->complete();
      case action::destroy: {
        {
          std::lock_guard lock(self->queue_->mutex_);
          if (self->queue_->op_ == self) self->queue_->op_ = nullptr;
        }
        if (self->slot_.is_connected()) self->slot_.clear();
        // Destroy the handler only after the memory is released: it may own it.
        allocator_type alloc = self->get_allocator();
        Handler handler(std::move(self->handler_));
        free(self, alloc);
        return;
      }
    }
  }

  // Runs on the handler's executor: the item is taken here, on the reader's side.
  void complete() {
    std::error_code ec;
    value_type value{};
    {
      std::lock_guard lock(queue_->mutex_);
      if (cancelled) {
        // A read started while another was pending never owned the queue.
        ec = queue_->op_ == this ? asio::error::operation_aborted : asio::error::already_started;
      } else if (!taker_.take(*queue_, ec, value)) {
        scheduled = false; // woken without anything to report: keep waiting
        return;
      }
      if (queue_->op_ == this) queue_->op_ = nullptr;
    }
    if (!ec) queue_->notify_space();
    if (slot_.is_connected()) slot_.clear();
    // The memory goes back before the handler runs, so that the next read of a
    // loop reuses it (Asio's recycling allocator).
    allocator_type alloc = get_allocator();
    Handler handler(std::move(handler_));
    work_executor work(std::move(work_));
    free(this, alloc);
    std::move(handler)(ec, std::move(value));
  }

  Handler handler_;
  work_executor work_;
  std::shared_ptr<Queue> queue_;
  Taker taker_;
};

// Starts a read: completes at once (deferred, never inline) when the queue has
// something to report, otherwise parks an operation on the queue.
template <class Queue, class Taker, class Handler, class IoExecutor>
void start_read(const std::shared_ptr<Queue>& queue, const IoExecutor& io_ex, Taker taker, Handler&& handler) {
  using handler_type = std::decay_t<Handler>;
  using value_type = typename Taker::value_type;
  if (!queue) {
    post_completion(io_ex, std::forward<Handler>(handler), std::error_code(asio::error::bad_descriptor), value_type{});
    return;
  }
  {
    std::error_code ec;
    value_type value{};
    std::unique_lock lock(queue->mutex_);
    if (queue->op_ != nullptr) {
      lock.unlock();
      post_completion(io_ex, std::forward<Handler>(handler), std::error_code(asio::error::already_started),
                      value_type{});
      return;
    }
    if (taker.take(*queue, ec, value)) {
      lock.unlock();
      if (!ec) queue->notify_space();
      defer_completion(io_ex, std::forward<Handler>(handler), ec, std::move(value));
      return;
    }
  }
  // Nothing to report yet. The operation and its cancellation handler are set
  // up before the queue can see them, as Asio's own operations do.
  handler_type h(std::forward<Handler>(handler));
  auto slot = asio::get_associated_cancellation_slot(h);
  using op_type = read_op<Queue, Taker, handler_type, IoExecutor>;
  op_type* op = op_type::create(std::move(h), io_ex, queue, std::move(taker));
  if (slot.is_connected()) {
    op->slot_ = slot;
    slot.template emplace<read_cancellation<Queue>>(queue.get(), op);
  }
  std::unique_lock lock(queue->mutex_);
  if (queue->op_ != nullptr) {
    // Another read was started concurrently (misuse): this one loses.
    op->cancelled = true;
  }
  // A second look: an item may have arrived meanwhile. Either way the op now
  // owns the read position; it runs once it is posted.
  bool ready = op->cancelled;
  if (!ready) {
    auto s = queue->state_locked();
    ready = s != read_state::empty;
  }
  if (!op->cancelled) queue->op_ = op;
  if (ready) {
    op->scheduled = true;
    lock.unlock();
    op->post();
  }
}

// try_next: the synchronous twin of start_read; would_block when nothing is queued.
template <class Queue, class Taker>
typename Taker::value_type try_read(const std::shared_ptr<Queue>& queue, Taker taker, std::error_code& ec) {
  typename Taker::value_type value{};
  ec = {};
  if (!queue) {
    ec = asio::error::bad_descriptor;
    return value;
  }
  {
    std::lock_guard lock(queue->mutex_);
    if (queue->op_ != nullptr)
      ec = asio::error::already_started;
    else if (!taker.take(*queue, ec, value))
      ec = asio::error::would_block;
  }
  if (!ec) queue->notify_space();
  return value;
}

} // namespace bytecast::detail

#endif // BYTECAST_DETAIL_READER_QUEUE_HPP
