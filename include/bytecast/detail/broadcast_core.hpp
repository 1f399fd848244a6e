// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_BROADCAST_CORE_HPP
#define BYTECAST_DETAIL_BROADCAST_CORE_HPP

// The writer's side of a broadcast: its streams' queues, the open flag, the replay window and the
// writes waiting for room.

#include <bytecast/detail/config.hpp>
#include <bytecast/detail/item_traits.hpp>
#include <bytecast/detail/op_registry.hpp>
#include <bytecast/detail/operation.hpp>
#include <bytecast/detail/reader_queue.hpp>
#include <bytecast/detail/ring.hpp>
#include <bytecast/detail/wake_list.hpp>
#include <bytecast/detail/write_op.hpp>
#include <bytecast/options.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

BYTECAST_NAMESPACE_BEGIN
namespace detail {

// The writer's lock, held for one call. The queues the writer forgets under it are destroyed only
// after it is released: a queue's destructor takes the registry's lock, which comes first in the
// lock order (an io_context shutdown holds it while it takes the writer's lock).
template <class Queue>
class writer_lock {
 public:
  explicit writer_lock(std::mutex& m) : lock_(m) {}
  [[nodiscard]] std::vector<std::shared_ptr<Queue>>& released() noexcept { return released_; }
  void unlock() { lock_.unlock(); }

 private:
  std::vector<std::shared_ptr<Queue>> released_; // declared first: destroyed after lock_ unlocks
  std::unique_lock<std::mutex> lock_;
};

// Byte writers broadcast chunks (shared, never copied), typed writers values (a copy per stream).
//
// Lock order: the registry's lock, then this writer's mutex_, then each queue's own lock. A queue
// calls on_space() with no lock held.
template <class Item>
class broadcast_core final : public registry_node,
                             public queue_owner<reader_queue<Item>>,
                             public std::enable_shared_from_this<broadcast_core<Item>> {
 public:
  using queue_type = reader_queue<Item>;
  using traits = item_traits<Item>;
  using parked_write = write_op_base<Item>;
  using lock_type = writer_lock<queue_type>;

  broadcast_core(std::shared_ptr<op_registry> registry, const writer_options& options)
      : registry_node(registry), registry_(std::move(registry)), options_(options) {}

  ~broadcast_core() { unregister(); }

  // A queue for a new stream, with its own limit and policy (unset: the writer's), preloaded with
  // the header, then the retained items from where it starts (API.md sections 5 to 7). Strong:
  // throws system_error(invalid_argument) for a start it cannot make.
  [[nodiscard]] std::shared_ptr<queue_type> subscribe(const stream_options& o) {
    if ((o.from_position || o.align_to_sync_points) && !traits::has_positions)
      throw system_error(asio::error::invalid_argument, "bytecast: positions and sync points are for byte writers");
    if (o.from_position && o.align_to_sync_points)
      throw system_error(asio::error::invalid_argument, "bytecast: from_position with align_to_sync_points");
    const std::size_t limit = o.queue_limit.value_or(options_.queue_limit);
    const overflow_policy policy = o.on_overflow.value_or(options_.on_overflow);
    auto q = std::make_shared<queue_type>(registry_, limit, policy, o.align_to_sync_points, this->weak_from_this());
    lock_type lock(mutex_);
    preload_locked(*q, o);
    if (!open_) {
      q->mark_closed(close_reason_);
      return q;
    }
    queues_.push_back(q);
    if (q->holds_writer_back()) ++holding_back_;
    complete_stream_waits_locked();
    return q;
  }

  // Synchronous write: delivers `item` to every live queue now, or fails. Strong.
  error_code publish(Item&& item) {
    const std::size_t weight = traits::weight(item);
    lock_type lock(mutex_);
    if (!open_) return asio::error::broken_pipe;
    if (must_wait_locked(weight)) return asio::error::would_block;
    deliver_locked(std::move(item), weight, lock.released());
    return {};
  }

  // Asynchronous write: delivers now if it can, otherwise parks `op` until the readers make room
  // (first in, first out, so waiting writes keep their order). Completes with broken_pipe once
  // closed, operation_aborted when cancelled.
  void async_publish(parked_write* op) {
    lock_type lock(mutex_);
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
        deliver_locked(std::move(op->item), op->weight, lock.released());
      } catch (const std::bad_alloc&) {
        op->result = error_code(asio::error::no_memory); // delivered to nobody
      } catch (...) {
        // A typed value's copy threw: it propagates from async_write, as from write(). The handler
        // goes first, outside the lock (destroying it may destroy a stream of this writer).
        lock.unlock();
        op->destroy();
        throw;
      }
    }
    post_or_free(op);
  }

  // Withdraws a parked write: nothing of it was delivered. The writes behind it that now fit go out
  // (it may have been the one that held them back: only the first in line waits for room).
  void withdraw(parked_write* op) {
    lock_type lock(mutex_);
    auto it = std::find(waiting_.begin(), waiting_.end(), op);
    if (it == waiting_.end()) return; // delivered or completed already
    waiting_.erase(it);
    op->result = asio::error::operation_aborted;
    post_or_free(op);
    deliver_waiting_locked(lock.released());
  }

  // A wait for streams: completes (never inline) once satisfied, with broken_pipe once closed.
  void async_wait_streams(stream_wait_base* op) {
    lock_type lock(mutex_);
    if (!open_) {
      op->result = asio::error::broken_pipe;
    } else if (!op->satisfied_by(queues_.size())) {
      try {
        stream_waits_.push_back(op);
        return;
      } catch (const std::bad_alloc&) {
        op->result = error_code(asio::error::no_memory);
      }
    }
    post_or_free(op);
  }

  void withdraw(stream_wait_base* op) {
    lock_type lock(mutex_);
    auto it = std::find(stream_waits_.begin(), stream_waits_.end(), op);
    if (it == stream_waits_.end()) return; // completed already
    stream_waits_.erase(it);
    op->result = asio::error::operation_aborted;
    post_or_free(op);
  }

  // A stream is gone: forget its queue now, so that it is no longer counted when its destructor
  // returns; the writes it held back may go out.
  void on_detach(const queue_type* q) noexcept override {
    lock_type lock(mutex_);
    auto it = std::find_if(queues_.begin(), queues_.end(), [q](const auto& p) { return p.get() == q; });
    if (it == queues_.end()) return; // pruned already
    try {
      lock.released().reserve(lock.released().size() + 1);
    } catch (...) {
      return; // out of memory: the next write prunes it (it is dead)
    }
    forget_locked(it, lock.released());
    complete_stream_waits_locked();
    deliver_waiting_locked(lock.released());
  }

  // A reader made room (or left): deliver the waiting writes that now fit. It takes the writer's
  // lock even when nothing seems to wait: a writer that found the queue full may be about to park,
  // and the lock orders the two.
  void on_space() override {
    lock_type lock(mutex_);
    deliver_waiting_locked(lock.released());
  }

  // Only the first call counts: every live queue gets, after what it holds, the sentinel (or,
  // with a `reason`, that error for every further read); waiting writes and waits for streams
  // complete with broken_pipe, delivered to nobody. Nothrow.
  void close(const error_code& reason = {}) noexcept {
    lock_type lock(mutex_);
    prune_locked(lock.released());
    if (!open_) return;
    open_ = false;
    close_reason_ = reason;
    open_flag_.store(false, std::memory_order_release);
    for (auto& q : queues_) q->close(reason);
    std::deque<parked_write*> waiting = std::move(waiting_);
    waiting_.clear();
    for (parked_write* op : waiting) {
      op->result = asio::error::broken_pipe;
      post_or_free(op);
    }
    std::vector<stream_wait_base*> waits = std::move(stream_waits_);
    stream_waits_.clear();
    for (stream_wait_base* op : waits) {
      op->result = asio::error::broken_pipe;
      post_or_free(op);
    }
  }

  void take_parked(std::vector<operation*>& out) override {
    std::lock_guard lock(mutex_);
    out.insert(out.end(), waiting_.begin(), waiting_.end());
    waiting_.clear();
    out.insert(out.end(), stream_waits_.begin(), stream_waits_.end());
    stream_waits_.clear();
  }

  // Byte writers: the header every new stream gets first (an empty chunk: none).
  void set_header(chunk&& header) noexcept {
    std::lock_guard lock(mutex_);
    header_ = std::move(header); // the old one is released under the lock: a block, no callback
  }
  [[nodiscard]] chunk header() const noexcept {
    std::lock_guard lock(mutex_);
    return header_;
  }

  [[nodiscard]] bool is_open() const noexcept { return open_flag_.load(std::memory_order_acquire); }
  [[nodiscard]] std::uint64_t written() const noexcept { return written_.load(std::memory_order_relaxed); }

  // Live streams: those fed and counted (a stream leaves when destroyed or cut off).
  [[nodiscard]] std::size_t stream_count() const noexcept {
    std::lock_guard lock(mutex_);
    return queues_.size();
  }

 private:
  using released_queues = std::vector<std::shared_ptr<queue_type>>;

  // Only streams that hold the writer back (bounded, `wait`) can be full for it.
  [[nodiscard]] bool any_full_locked(std::size_t weight) const {
    return std::any_of(queues_.begin(), queues_.end(),
                       [&](const auto& q) { return q->holds_writer_back() && q->full_for(weight); });
  }

  // A write must wait when an earlier write waits, or a stream that holds the writer back is full.
  // O(1) when no stream holds the writer back.
  [[nodiscard]] bool must_wait_locked(std::size_t weight) const {
    return !waiting_.empty() || (holding_back_ != 0 && any_full_locked(weight));
  }

  // Delivers the waiting writes, oldest first, while the first one fits. A write that cannot be
  // delivered (out of memory, or a typed value whose copy throws) completes with no_memory or
  // invalid_argument, delivered to nobody: there is no caller left to throw to, and it must not
  // block the line.
  void deliver_waiting_locked(released_queues& released) noexcept {
    while (!waiting_.empty() && !any_full_locked(waiting_.front()->weight)) {
      parked_write* op = waiting_.front();
      waiting_.pop_front();
      try {
        deliver_locked(std::move(op->item), op->weight, released);
      } catch (const std::bad_alloc&) {
        op->result = error_code(asio::error::no_memory);
      } catch (...) {
        op->result = error_code(asio::error::invalid_argument);
      }
      post_or_free(op);
    }
  }

  // Hands `item` to every live queue, in one global order: the writer's lock is held across all
  // queues, so concurrent writes never interleave.
  //
  // All or nothing: everything that can throw (room in each queue and in the replay window, the
  // per-stream copies of a typed value) happens before the first queue sees the item.
  void deliver_locked(Item&& item, std::size_t weight, released_queues& released) {
    const bool retain = options_.replay_limit != 0;
    const std::size_t n = queues_.size();
    for (auto& q : queues_) q->ensure_room();
    if (retain && replay_.full()) replay_.grow();

    // Every queue but the last gets a copy; the last one (or the replay window) gets the item.
    fanout_.prepare(item, retain ? n : (n == 0 ? 0 : n - 1));
    bool prune = false;
    {
      wake_list wakes; // posts the woken reads when it goes
      for (std::size_t i = 0; i < n; ++i) {
        const bool last = i + 1 == n && !retain;
        prune |= !queues_[i]->push(last ? std::move(item) : fanout_.next(item, i), weight, wakes);
      }
    }
    fanout_.done();
    if (prune) prune_locked(released);
    if (retain) retain_locked(std::move(item), weight);
    written_.fetch_add(weight, std::memory_order_relaxed);
  }

  // Forgets the queues of gone or cut-off streams; the caller destroys them after the lock.
  void prune_locked(released_queues& released) noexcept {
    auto is_dead = [](const auto& q) { return q->dead(); };
    try {
      released.reserve(released.size() +
                       static_cast<std::size_t>(std::count_if(queues_.begin(), queues_.end(), is_dead)));
    } catch (...) {
      return; // out of memory: forget them next time
    }
    for (auto it = queues_.begin(); it != queues_.end();) it = is_dead(*it) ? forget_locked(it, released) : it + 1;
    complete_stream_waits_locked();
  }

  // Moves the queue at `it` to `released` (which has room: reserved by the caller) and forgets what
  // it counted for; returns the next position.
  using queue_iterator = typename std::vector<std::shared_ptr<queue_type>>::iterator;
  queue_iterator forget_locked(queue_iterator it, released_queues& released) noexcept {
    if ((*it)->holds_writer_back()) --holding_back_;
    released.push_back(std::move(*it));
    return queues_.erase(it);
  }

  // Posts the waits for streams that the number of live streams now satisfies.
  void complete_stream_waits_locked() noexcept {
    const std::size_t live = queues_.size();
    std::erase_if(stream_waits_, [live](stream_wait_base* op) {
      if (!op->satisfied_by(live)) return false;
      post_or_free(op);
      return true;
    });
  }

  // A new stream's start: the header, then (from_position) the retained bytes from that position,
  // (replay) the retained items, from the newest sync point when aligned, or nothing (live).
  void preload_locked(queue_type& q, const stream_options& o) {
    const std::uint64_t written = written_.load(std::memory_order_relaxed);
    const std::uint64_t oldest = written - replay_weight_; // the replay window: [oldest, written]
    if (o.from_position && *o.from_position > written)
      throw system_error(asio::error::invalid_argument, "bytecast: from_position is ahead of bytes_written()");
    if constexpr (traits::has_positions)
      if (!header_.empty()) q.preload_header(header_);
    std::size_t first = replay_.size(); // the first retained item to preload
    std::uint64_t missed = 0;
    bool skipping = false;
    if (o.from_position) {
      const std::uint64_t p = *o.from_position;
      if (p < oldest) {
        missed = oldest - p; // reported as a lagged gap; it goes on from the oldest retained item
        first = 0;
      } else {
        std::uint64_t pos = oldest;
        for (first = 0; first < replay_.size(); ++first) {
          const std::size_t w = traits::weight(replay_[first]);
          if (pos + w > p) break;
          pos += w;
        }
        if (first < replay_.size() && pos < p) { // p is inside this item: its tail, copied
          if constexpr (traits::has_positions) {
            const auto& c = replay_[first];
            q.preload(Item::copy_of(std::span(c.data() + (p - pos), c.size() - (p - pos))));
          }
          ++first;
        }
      }
    } else if (o.replay) {
      first = 0;
      if (o.align_to_sync_points) {
        first = replay_.size();
        for (std::size_t i = replay_.size(); i-- > 0;)
          if (traits::is_sync(replay_[i])) {
            first = i;
            break;
          }
        skipping = first == replay_.size(); // none retained: as live
      }
    } else {
      skipping = o.align_to_sync_points;
    }
    for (std::size_t i = first; i < replay_.size(); ++i) q.preload(replay_[i]);
    q.start_at(written, missed, skipping);
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

  // Set at construction, never changed.
  const std::shared_ptr<op_registry> registry_;
  const writer_options options_;

  // Relaxed: a counter on its own, nothing is published through it.
  std::atomic<std::uint64_t> written_{0};
  // Mirrors open_ for the lock-free is_open(): the release store in close() pairs with the acquire
  // load in is_open().
  std::atomic<bool> open_flag_{true};

  mutable std::mutex mutex_;
  // Guarded by mutex_:
  std::vector<std::shared_ptr<queue_type>> queues_; // streams still fed
  ring<Item> replay_;                               // newest items, oldest first
  std::size_t replay_weight_ = 0;
  typename traits::fanout fanout_;                  // the copies of the write being delivered
  std::deque<parked_write*> waiting_;                   // parked async writes, oldest first
  std::vector<stream_wait_base*> stream_waits_;        // parked waits for streams
  std::size_t holding_back_ = 0;                    // queues_ that hold the writer back (bounded, wait)
  error_code close_reason_;                         // what close() was given
  chunk header_;                                    // byte writers: what every new stream gets first
  bool open_ = true;
};

} // namespace detail
BYTECAST_NAMESPACE_END

#endif // BYTECAST_DETAIL_BROADCAST_CORE_HPP
