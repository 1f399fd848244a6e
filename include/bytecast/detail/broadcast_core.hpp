// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_BROADCAST_CORE_HPP
#define BYTECAST_DETAIL_BROADCAST_CORE_HPP

#include <bytecast/detail/completion.hpp>
#include <bytecast/detail/config.hpp>
#include <bytecast/detail/reader_queue.hpp>
#include <bytecast/detail/ring.hpp>
#include <bytecast/detail/stream_service.hpp>
#include <bytecast/options.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <system_error>
#include <type_traits>
#include <vector>

namespace bytecast::detail {

// One counter for every writer kind (byte and typed): the first writer gets 1.
[[nodiscard]] inline std::uint64_t next_writer_id() noexcept {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

// An asynchronous write of one item, parked while a bounded `wait` writer has a
// full stream. It owns its item (the caller's bytes were already copied).
template <class Item>
class write_op_base : public pending_operation {
 public:
  enum class action { post, run, destroy };

  // Posts the completion (with `result`) to the handler's executor.
  void post() { fn_(this, action::post); }
  void run() { fn_(this, action::run); }
  void destroy() final { fn_(this, action::destroy); }

  Item item;
  std::size_t weight;
  error_code result;

 protected:
  using func_type = void (*)(write_op_base*, action);
  write_op_base(func_type fn, Item&& i, std::size_t w) : item(std::move(i)), weight(w), fn_(fn) {}
  ~write_op_base() = default;

 private:
  func_type fn_;
};

// The writer's side of a broadcast: the list of reader queues, the open flag,
// the replay window and the writes waiting for room. Byte writers broadcast
// `chunk`s (shared, never copied), typed writers values (one copy per stream).
template <class Item>
class broadcast_core final : public registry_node,
                             public space_listener,
                             public std::enable_shared_from_this<broadcast_core<Item>> {
 public:
  using queue_type = reader_queue<Item>;
  using traits = item_traits<Item>;
  using write_op = write_op_base<Item>;
  using released_queues = std::vector<std::shared_ptr<queue_type>>;

  broadcast_core(std::shared_ptr<op_registry> registry, const writer_options& options)
      : registry_node(registry), registry_(std::move(registry)), options_(options) {}

  ~broadcast_core() { unregister(); }

  [[nodiscard]] const writer_options& options() const noexcept { return options_; }

  // A new reader queue; with `replay`, preloaded with the retained recent items.
  [[nodiscard]] std::shared_ptr<queue_type> subscribe(bool replay) {
    auto q = std::make_shared<queue_type>(registry_, options_);
    if (waits_for_room()) q->set_listener(this->weak_from_this());
    std::lock_guard lock(mutex_);
    if (replay)
      for (std::size_t i = 0; i < replay_.size(); ++i) q->preload(replay_[i]);
    if (open_)
      queues_.push_back(q);
    else
      q->mark_closed();
    return q;
  }

  // Synchronous write: delivers `item` to every live queue now, or fails.
  error_code publish(Item&& item) {
    const std::size_t weight = traits::weight(item);
    released_queues released; // destroyed after the lock is released
    std::lock_guard lock(mutex_);
    if (!open_) return asio::error::broken_pipe;
    if (must_wait_locked(weight)) return asio::error::would_block;
    deliver_locked(std::move(item), weight, released);
    return {};
  }

  // Asynchronous write: delivers now if it can, otherwise parks `op` until the
  // readers make room (FIFO, so waiting writes keep their order). Completes
  // with broken_pipe once closed, operation_aborted when cancelled.
  void async_publish(write_op* op) {
    released_queues released; // destroyed after the lock is released
    std::unique_lock lock(mutex_);
    if (!open_) {
      op->result = asio::error::broken_pipe;
    } else if (must_wait_locked(op->weight)) {
      try {
        waiting_.push_back(op);
        return;
      } catch (const std::bad_alloc&) {
        op->result = error_code(asio::error::no_memory); // could not park: delivered to nobody
      }
    } else {
      try {
        deliver_locked(std::move(op->item), op->weight, released);
      } catch (const std::bad_alloc&) {
        op->result = error_code(asio::error::no_memory); // delivered to nobody
      } catch (...) {
        // A typed value's copy threw: it propagates from async_write, as from
        // write(). The handler goes first, outside the lock (destroying it may
        // destroy a stream of this writer).
        lock.unlock();
        op->destroy();
        throw;
      }
    }
    post_or_drop(op);
  }

  // Withdraws a parked write; nothing of it was delivered.
  // The writes behind it that now fit go out (it may have been the one that
  // held them back: only the first in line waits for room).
  void cancel_write(write_op* op) {
    released_queues released; // destroyed after the lock is released
    std::lock_guard lock(mutex_);
    auto it = std::find(waiting_.begin(), waiting_.end(), op);
    if (it == waiting_.end()) return; // delivered or completed already
    waiting_.erase(it);
    op->result = asio::error::operation_aborted;
    post_or_drop(op);
    deliver_waiting_locked(released);
  }

  // A reader made room (or left): deliver the waiting writes that now fit.
  // It takes the writer's lock even when nothing seems to wait: a writer that
  // found the queue full may be about to park, and the lock orders the two.
  void on_space() override {
    released_queues released; // destroyed after the lock is released
    std::lock_guard lock(mutex_);
    deliver_waiting_locked(released);
  }

  // Idempotent: every live queue gets the sentinel after what it holds;
  // waiting writes complete with broken_pipe, delivered to nobody.
  void close() {
    released_queues released; // destroyed after the lock is released
    std::lock_guard lock(mutex_);
    prune_locked(released);
    if (!open_) return;
    open_ = false;
    open_flag_.store(false, std::memory_order_release);
    for (auto& q : queues_) q->close();
    std::deque<write_op*> waiting = std::move(waiting_);
    waiting_.clear();
    for (write_op* op : waiting) {
      op->result = asio::error::broken_pipe;
      post_or_drop(op);
    }
  }

  void take_parked(std::vector<pending_operation*>& out) override {
    std::lock_guard lock(mutex_);
    out.insert(out.end(), waiting_.begin(), waiting_.end());
    waiting_.clear();
  }

  [[nodiscard]] bool is_open() const noexcept { return open_flag_.load(std::memory_order_acquire); }

  [[nodiscard]] std::uint64_t written() const noexcept { return written_.load(std::memory_order_relaxed); }

  [[nodiscard]] std::size_t stream_count() const noexcept {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(
        std::count_if(queues_.begin(), queues_.end(), [](const auto& q) { return !q->dead(); }));
  }

 private:
  [[nodiscard]] bool waits_for_room() const noexcept {
    return options_.queue_limit != 0 && options_.on_overflow == overflow_policy::wait;
  }

  [[nodiscard]] bool any_full_locked(std::size_t weight) const {
    return std::any_of(queues_.begin(), queues_.end(),
                       [&](const auto& q) { return q->full_for(weight); });
  }

  // A write must wait when a stream is full, or an earlier write already waits.
  [[nodiscard]] bool must_wait_locked(std::size_t weight) const {
    return waits_for_room() && (!waiting_.empty() || any_full_locked(weight));
  }

  // Delivers the waiting writes, oldest first, while the first one fits. A
  // write that cannot be delivered (out of memory, or a typed value whose copy
  // throws) completes with no_memory or invalid_argument, delivered to nobody:
  // there is no caller left to throw to, and it must not block the line.
  void deliver_waiting_locked(released_queues& released) noexcept {
    while (!waiting_.empty() && !any_full_locked(waiting_.front()->weight)) {
      write_op* op = waiting_.front();
      waiting_.pop_front();
      try {
        deliver_locked(std::move(op->item), op->weight, released);
      } catch (const std::bad_alloc&) {
        op->result = error_code(asio::error::no_memory);
      } catch (...) {
        op->result = error_code(asio::error::invalid_argument);
      }
      post_or_drop(op);
    }
  }

  // Posts a write's completion. Posting allocates; when even that fails, the
  // operation is destroyed with its handler, unrun (its runner owns it).
  static void post_or_drop(write_op* op) noexcept {
    try {
      op->post();
    } catch (...) {
    }
  }

  // Hands `item` to every live queue, in one global order: the writer's lock is
  // held across all queues, so concurrent writes never interleave.
  //
  // All or nothing: everything that can throw (room in each queue and in the
  // replay window, the per-stream copies of a typed value) happens before the
  // first queue sees the item. Delivering is then exception-free for chunks
  // and for values whose move constructor does not throw.
  void deliver_locked(Item&& item, std::size_t weight, released_queues& released) {
    const bool retain = options_.replay_limit != 0;
    const std::size_t n = queues_.size();
    for (auto& q : queues_) q->ensure_room();
    if (retain && replay_.full()) replay_.grow();

    // Every queue but the last gets a copy; the last one (or the replay
    // window) gets the item itself.
    const std::size_t copies = retain ? n : (n == 0 ? 0 : n - 1);
    if constexpr (std::is_same_v<Item, chunk>) {
      traits::reserve_copies(item, copies); // one atomic add for all the handles
    } else {
      staging_.clear();
      try {
        staging_.reserve(copies);
        for (std::size_t i = 0; i < copies; ++i) staging_.push_back(item);
      } catch (...) {
        staging_.clear();
        throw;
      }
    }
    auto next_copy = [&](std::size_t i) -> Item {
      if constexpr (std::is_same_v<Item, chunk>)
        return traits::copy(item);
      else
        return std::move(staging_[i]);
    };

    bool prune = false;
    {
      wake_list wakes; // posts the woken reads when it goes, also if a move throws
      for (std::size_t i = 0; i < n; ++i) {
        const bool last = i + 1 == n && !retain;
        prune |= !queues_[i]->push(last ? std::move(item) : next_copy(i), weight, wakes);
      }
    }
    if constexpr (!std::is_same_v<Item, chunk>) staging_.clear();
    if (prune) prune_locked(released);
    if (retain) retain_locked(std::move(item), weight);
    written_.fetch_add(weight, std::memory_order_relaxed);
  }

  // Forgets the queues of gone or cut-off streams. They are destroyed by the
  // caller after the writer's lock is released: a queue's destructor takes
  // the registry's lock, which an io_context shutdown holds while it takes
  // the writer's lock.
  void prune_locked(released_queues& released) noexcept {
    auto is_dead = [](const auto& q) { return q->dead(); };
    try {
      released.reserve(released.size() + static_cast<std::size_t>(std::count_if(queues_.begin(), queues_.end(), is_dead)));
    } catch (...) {
      return; // out of memory: forget them next time
    }
    for (auto& q : queues_)
      if (is_dead(q)) released.push_back(std::move(q));
    std::erase(queues_, nullptr);
  }

  // Keeps the newest whole items that fit in replay_limit.
  void retain_locked(Item&& item, std::size_t weight) {
    replay_.push_back(std::move(item)); // room was made before delivering
    replay_weight_ += weight;
    while (!replay_.empty() && replay_weight_ > options_.replay_limit) {
      replay_weight_ -= traits::weight(replay_.front());
      replay_.pop_front();
    }
  }

  const std::shared_ptr<op_registry> registry_;
  const writer_options options_;
  std::atomic<std::uint64_t> written_{0};
  std::atomic<bool> open_flag_{true};         // mirrors open_ for the lock-free is_open()

  mutable std::mutex mutex_;
  // Guarded by mutex_:
  std::vector<std::shared_ptr<queue_type>> queues_; // streams still fed
  ring<Item> replay_;                               // newest items, oldest first
  std::vector<Item> staging_;                       // typed writers: the copies of one write
  std::size_t replay_weight_ = 0;
  std::deque<write_op*> waiting_; // parked async writes, oldest first
  bool open_ = true;
};

template <class Item>
struct write_cancellation {
  write_cancellation(std::weak_ptr<broadcast_core<Item>> c, write_op_base<Item>* o) noexcept
      : core(std::move(c)), op(o) {}
  std::weak_ptr<broadcast_core<Item>> core;
  write_op_base<Item>* op;
  void operator()(asio::cancellation_type_t type) {
    if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                 asio::cancellation_type::total)) == asio::cancellation_type::none)
      return;
    if (auto c = core.lock()) c->cancel_write(op);
  }
};

// Completion of a write: `void(error_code, std::size_t)` for bytes
// (`Sized`), `void(error_code)` for typed values.
template <class Item, class Handler, class IoExecutor, bool Sized>
class write_op final : public write_op_base<Item> {
  using base = write_op_base<Item>;
  using action = typename base::action;

 public:
  using handler_executor = asio::associated_executor_t<Handler, IoExecutor>;
  using work_executor = std::decay_t<decltype(asio::prefer(std::declval<const handler_executor&>(),
                                                           asio::execution::outstanding_work.tracked))>;
  using allocator_type = typename std::allocator_traits<
      asio::associated_allocator_t<Handler, asio::recycling_allocator<void>>>::template rebind_alloc<write_op>;

  static write_op* create(Handler&& handler, const IoExecutor& io_ex, Item&& item, std::size_t weight) {
    allocator_type alloc(asio::get_associated_allocator(handler, asio::recycling_allocator<void>()));
    write_op* p = std::allocator_traits<allocator_type>::allocate(alloc, 1);
    try {
      return ::new (static_cast<void*>(p)) write_op(std::move(handler), io_ex, std::move(item), weight);
    } catch (...) {
      std::allocator_traits<allocator_type>::deallocate(alloc, p, 1);
      throw;
    }
  }

  asio::cancellation_slot slot_;

 private:
  write_op(Handler&& handler, const IoExecutor& io_ex, Item&& item, std::size_t weight)
      : base(&write_op::do_action, std::move(item), weight),
        handler_(std::move(handler)),
        work_(asio::prefer(asio::get_associated_executor(handler_, io_ex), asio::execution::outstanding_work.tracked)) {}

  static void do_action(base* b, action a) {
    auto* self = static_cast<write_op*>(b);
    if (a == action::post) {
      work_executor ex = self->work_;
      asio::post(ex, op_runner<base>(self));
      return;
    }
    // The slot is cleared here, on the handler's executor, never by a reader's
    // thread that delivered the write.
    if (self->slot_.is_connected()) self->slot_.clear();
    allocator_type alloc(asio::get_associated_allocator(self->handler_, asio::recycling_allocator<void>()));
    Handler handler(std::move(self->handler_));
    work_executor work(std::move(self->work_));
    error_code ec = self->result;
    std::size_t n = ec ? 0 : self->weight;
    self->~write_op();
    std::allocator_traits<allocator_type>::deallocate(alloc, self, 1);
    if (a == action::run) {
      if constexpr (Sized)
        std::move(handler)(ec, n);
      else
        std::move(handler)(ec);
    }
  }

  Handler handler_;
  work_executor work_;
};

// Starts an asynchronous write of `item` on `core` (null: a moved-from writer).
template <bool Sized, class Item, class Handler, class IoExecutor>
void start_write(const std::shared_ptr<broadcast_core<Item>>& core, const IoExecutor& io_ex, Item&& item,
                 std::size_t weight, Handler&& handler) {
  using handler_type = std::decay_t<Handler>;
  if (!core) {
    if constexpr (Sized)
      post_completion(io_ex, std::forward<Handler>(handler), error_code(asio::error::bad_descriptor),
                      std::size_t{0});
    else
      post_completion(io_ex, std::forward<Handler>(handler), error_code(asio::error::bad_descriptor));
    return;
  }
  handler_type h(std::forward<Handler>(handler));
  auto slot = asio::get_associated_cancellation_slot(h);
  using op_type = write_op<Item, handler_type, IoExecutor, Sized>;
  op_type* op = op_type::create(std::move(h), io_ex, std::move(item), weight);
  if (slot.is_connected()) {
    op->slot_ = slot;
    try {
      slot.template emplace<write_cancellation<Item>>(core, op);
    } catch (...) {
      op->destroy();
      throw;
    }
  }
  core->async_publish(op);
}

} // namespace bytecast::detail

#endif // BYTECAST_DETAIL_BROADCAST_CORE_HPP
