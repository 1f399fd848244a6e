// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_READER_QUEUE_HPP
#define BYTECAST_DETAIL_READER_QUEUE_HPP

// One reader's queue: the state machine between the writer and one stream, and its lock rules.

#include <bytecast/detail/config.hpp>
#include <bytecast/detail/item_traits.hpp>
#include <bytecast/detail/op_registry.hpp>
#include <bytecast/detail/queue_contract.hpp>
#include <bytecast/detail/read_batch.hpp>
#include <bytecast/detail/operation.hpp>
#include <bytecast/detail/ring.hpp>
#include <bytecast/detail/wake_list.hpp>
#include <bytecast/options.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

BYTECAST_NAMESPACE_BEGIN
namespace detail {

// The writer appends to the queue's shared part under its lock. A reader moves what is there into
// its own batch in one step (an unbounded queue hands over everything, a bounded one item by item,
// so that the limit still applies to what is queued) and then reads the batch without any lock.
// Items are taken only by the reading side, never by the writer on its behalf, so a cancelled read
// never loses an item.
//
// Lock order: the writer's lock (broadcast_core), then this queue's mutex_; and the registry's lock
// before both (at shutdown, take_parked() runs under it). No method here is called with mutex_ held,
// and none returns with it held.
template <class Item>
class reader_queue final : public registry_node {
 public:
  using traits = item_traits<Item>;
  using slot_type = typename traits::slot_type;

  using owner_type = queue_owner<reader_queue>;

  // `limit` 0: unbounded (whatever the policy). `align`: start, and resume after a gap, at sync points.
  reader_queue(std::shared_ptr<op_registry> registry, std::size_t limit, overflow_policy policy, bool align,
               std::weak_ptr<owner_type> owner)
      : registry_node(std::move(registry)),
        limit_(limit),
        policy_(limit == 0 ? overflow_policy::wait : policy),
        align_(align),
        owner_(std::move(owner)) {}
  ~reader_queue() { unregister(); }

  // True for a bounded `wait` stream: a write waits (or fails) while it is full.
  [[nodiscard]] bool holds_writer_back() const noexcept { return limit_ != 0 && policy_ == overflow_policy::wait; }

  // --- The writer's side: called with the writer's lock held. ---

  // Before anything of a write is delivered: makes sure push() will not allocate. May throw (then
  // the write delivers to nobody).
  void ensure_room() {
    if (!needs_room_) return;
    std::lock_guard lock(mutex_);
    if (shared_.items.full()) shared_.items.grow();
    needs_room_ = false;
  }

  // Queues `item` (or drops or cuts off, under a full bounded policy); returns false when the
  // writer should forget this queue: its stream is gone or was just cut off. A parked read is taken
  // out of its parking place and added to `wakes`, which the writer posts once the write reached
  // every queue. Never throws: ensure_room() ran first.
  bool push(Item&& item, std::size_t weight, wake_list& wakes) noexcept {
    read_op_base* wake = nullptr;
    bool keep = true;
    {
      std::lock_guard lock(mutex_);
      if (dead()) return false;
      auto& s = shared_;
      s.end_pos += weight;
      if (s.skipping && !skip_unless_sync_locked(item, weight)) return true; // skipped: never queued
      if (limit_ != 0 && !s.items.empty() && s.weight + weight > limit_) {
        if (policy_ == overflow_policy::disconnect) {
          s.end_pos -= weight; // never delivered: the position ends after what it holds
          s.end = end_state::overflowed;
          dead_.store(true, std::memory_order_release);
          keep = false;
        } else if (policy_ == overflow_policy::drop_oldest) {
          while (!s.items.empty() && s.weight + weight > limit_) drop_front_locked();
          // Aligned: the read after the gap must return a sync point, so the gap goes on to the
          // next one queued, or to the next one written.
          if (align_) {
            while (!s.items.empty() && !traits::is_sync(s.items.front())) drop_front_locked();
            if (s.items.empty()) s.skipping = true;
          }
          // One lagged per gap: drops that follow a reported lagged before the reader took
          // anything widen the same gap.
          if (!s.gap_reported) s.lagged = true;
          if (s.skipping && !skip_unless_sync_locked(item, weight)) return true;
        }
      }
      if (keep) {
        s.items.push_back(slot_type(std::move(item)));
        s.weight += weight;
        // Keep one free slot for the next write; if that fails, the next write makes room before
        // it delivers anything.
        if (s.items.full()) {
          try {
            s.items.grow();
          } catch (...) {
            needs_room_ = true;
          }
        }
      }
      wake = std::exchange(s.waiting, nullptr);
    }
    if (wake != nullptr) wakes.add(wake);
    return keep;
  }

  // True if an item of `weight` does not fit now (bounded writers only).
  [[nodiscard]] bool full_for(std::size_t weight) const {
    std::lock_guard lock(mutex_);
    return !dead() && !shared_.items.empty() && shared_.weight + weight > limit_;
  }

  // The writer closed: the sentinel (or, with a `reason`, that error for every further read)
  // follows everything queued.
  void close(const error_code& reason) noexcept {
    read_op_base* wake = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (shared_.end != end_state::open) return;
      shared_.end = end_state::closed;
      shared_.reason = reason;
      wake = std::exchange(shared_.waiting, nullptr);
    }
    if (wake != nullptr) post_or_free(wake);
  }

  // Before the queue is shared: a retained item for a replaying stream (a copy of its own), or
  // the end of a closed writer.
  void preload(const Item& item) {
    std::lock_guard lock(mutex_);
    shared_.items.push_back(traits::copy_slot(item));
    shared_.weight += traits::weight(item);
    if (shared_.items.full()) shared_.items.grow(); // push() relies on a free slot
  }
  void mark_closed(const error_code& reason) {
    std::lock_guard lock(mutex_);
    shared_.end = end_state::closed;
    shared_.reason = reason;
  }
  // Before the queue is shared (API.md section 7): the header, delivered first and outside the
  // positions; where the writer's sequence ends (`written`), with `missed` bytes of a resume older
  // than the replay window (reported as one lagged gap); and whether it waits for a sync point.
  void preload_header(const Item& header) { batch_.preload_header(traits::copy_slot(header), traits::weight(header)); }
  void start_at(std::uint64_t written, std::uint64_t missed, bool skipping) {
    std::lock_guard lock(mutex_);
    shared_.end_pos = written;
    shared_.dropped = missed;
    shared_.lagged = missed != 0;
    shared_.skipping = skipping;
  }

  // True once the stream handle is gone or the writer cut the stream off: the writer stops counting
  // and feeding it.
  [[nodiscard]] bool dead() const noexcept { return dead_.load(std::memory_order_acquire); }

  // --- The stream handle's side (any thread). ---

  // The stream is gone: release the backlog now, abort a pending read, and tell the writer (once:
  // a stream the writer cut off was forgotten already).
  void detach() noexcept {
    read_op_base* wake = nullptr;
    bool was_dead = false;
    {
      std::lock_guard lock(mutex_);
      was_dead = dead_.exchange(true, std::memory_order_acq_rel);
      detached_.store(true, std::memory_order_release);
      shared_.items.clear();
      shared_.weight = 0;
      // A parked read must wake to see that the stream is gone; one already posted sees it when it runs.
      wake = std::exchange(shared_.waiting, nullptr);
    }
    if (wake != nullptr) post_or_free(wake);
    // The batch belongs to the reading side: free it now unless an operation still holds it (then
    // it goes with the queue).
    if (acquire_reader()) {
      batch_.clear();
      release_reader();
    }
    if (!was_dead)
      if (auto owner = owner_.lock()) owner->on_detach(this);
  }

  [[nodiscard]] std::size_t queued_items() const {
    std::lock_guard lock(mutex_);
    return shared_.items.size() + batch_.items_snapshot();
  }
  [[nodiscard]] std::size_t queued_weight() const {
    std::lock_guard lock(mutex_);
    return shared_.weight + batch_.weight_snapshot();
  }
  [[nodiscard]] std::uint64_t dropped() const {
    std::lock_guard lock(mutex_);
    return shared_.dropped;
  }

  // The position of the next byte the stream delivers: in the batch while it holds unread bytes of
  // the sequence, else the shared part's front (its items end at end_pos, with no hole: bytes are
  // skipped only while it is empty), else end_pos.
  [[nodiscard]] std::uint64_t position() const {
    std::lock_guard lock(mutex_);
    const std::size_t unread = batch_.sequence_weight_snapshot();
    return unread != 0 ? batch_end_ - unread : shared_.end_pos - shared_.weight;
  }

  // The reason the writer closed with (empty for a clean close, or while open).
  [[nodiscard]] error_code close_reason() const {
    std::lock_guard lock(mutex_);
    return shared_.reason;
  }

  // --- Any thread: cancellation, shutdown. ---

  // Asks the outstanding read `op` to complete with operation_aborted. Parked, it is posted now;
  // already posted, it sees the request when it runs. Either way it takes nothing.
  void cancel(read_op_base* op) {
    op->request_cancel();
    bool parked = false;
    {
      std::lock_guard lock(mutex_);
      parked = shared_.waiting == op;
      if (parked) shared_.waiting = nullptr;
    }
    if (parked) op->post();
  }

  void take_parked(std::vector<operation*>& out) override {
    std::lock_guard lock(mutex_);
    if (shared_.waiting != nullptr) out.push_back(std::exchange(shared_.waiting, nullptr));
  }

  // --- The reading side: whoever holds the read position, an operation from its start until just
  // before its handler runs, or try_next. ---

  // Takes the read position; false if another read holds it (already_started).
  [[nodiscard]] bool acquire_reader() noexcept { return !reading_.exchange(true, std::memory_order_acquire); }
  void release_reader() noexcept { reading_.store(false, std::memory_order_release); }

  // True once the stream handle is gone (checked again under the lock by refill()).
  [[nodiscard]] bool detached() const noexcept { return detached_.load(std::memory_order_acquire); }

  [[nodiscard]] bool batch_empty() const noexcept { return batch_.empty(); }
  // With an empty batch, during a batch read: moves more of what the writer queued into the batch,
  // unless a drop_oldest gap comes first (the next read reports it). True if it moved anything.
  [[nodiscard]] bool refill_more() {
    bool moved = false;
    {
      std::lock_guard lock(mutex_);
      moved = !shared_.lagged && move_items_locked();
    }
    if (moved) notify_space();
    return moved;
  }

  // The batch: read it with no lock, while holding the read position.
  [[nodiscard]] read_batch<Item>& batch() noexcept { return batch_; }

  // With an empty batch: parks `op` unless something waits to be reported. True if it parked.
  [[nodiscard]] bool park_unless_news(read_op_base* op) {
    std::lock_guard lock(mutex_);
    const auto& s = shared_;
    if (s.lagged || !s.items.empty() || s.end != end_state::open) return false;
    op->perform(operation::action::prepare_park);
    shared_.waiting = op;
    return true;
  }

  // With an empty batch: moves what the writer queued into the batch (news::items), or reports
  // what comes instead, consuming it. `op` is the running read (null for try_next): when it was
  // cancelled or its stream destroyed meanwhile, news::aborted; when there is nothing, it parks.
  [[nodiscard]] news refill(read_op_base* op) {
    bool moved = false;
    news n = news::wait;
    {
      std::lock_guard lock(mutex_);
      // Checked under the lock: cancel() and detach() saw this read as not parked and left it to us.
      if (op != nullptr && (op->cancel_requested() || detached())) return news::aborted;
      n = take_news_locked();
      moved = n == news::items;
      if (n == news::wait && op != nullptr) {
        op->perform(operation::action::prepare_park);
        shared_.waiting = op;
      }
    }
    if (moved) notify_space();
    return n;
  }

 private:
  enum class end_state {
    open,      // the writer may write more
    closed,    // the writer closed; the sentinel is still to be delivered, or the reason for ever
    finished,  // the sentinel was delivered: reads give eof
    overflowed // cut off by a `disconnect` writer: reads give error::overflowed
  };

  // With mutex_ held and an empty batch.
  [[nodiscard]] news take_news_locked() {
    auto& s = shared_;
    if (s.lagged) {
      s.lagged = false;
      s.gap_reported = true;
      return news::lagged;
    }
    if (move_items_locked()) return news::items;
    switch (s.end) {
      case end_state::open:
        return news::wait;
      case end_state::closed:
        if (s.reason) return news::failed; // for every read from now on
        s.end = end_state::finished;
        return news::sentinel;
      case end_state::finished:
        return news::eof;
      case end_state::overflowed:
        break;
    }
    return news::overflowed;
  }

  // With mutex_ held: drops the oldest queued item (drop_oldest, and the gap to a sync point).
  void drop_front_locked() noexcept {
    auto& s = shared_;
    const std::size_t lost = traits::weight(s.items.front());
    s.dropped += lost;
    s.weight -= lost;
    s.items.pop_front();
  }

  // With mutex_ held, while waiting for a sync point: true if `item` is one (the wait ends and it
  // is queued); otherwise it is skipped. The shared part is empty meanwhile.
  bool skip_unless_sync_locked(const Item& item, std::size_t weight) noexcept {
    if (traits::is_sync(item)) {
      shared_.skipping = false;
      return true;
    }
    shared_.dropped += weight;
    return false;
  }

  // With mutex_ held: moves what the writer queued into the batch (an unbounded queue all of it,
  // a bounded one its front item, so that its limit still applies to what is queued).
  bool move_items_locked() noexcept {
    auto& s = shared_;
    if (s.items.empty()) return false;
    s.gap_reported = false;
    if (limit_ == 0) {
      batch_.take_all(s.items, std::exchange(s.weight, 0));
    } else {
      const std::size_t w = traits::weight(s.items.front());
      s.weight -= w;
      batch_.take_front(s.items, w);
    }
    batch_end_ = s.end_pos - s.weight;
    return true;
  }

  void notify_space() const {
    if (!holds_writer_back()) return;
    if (auto owner = owner_.lock()) owner->on_space();
  }

  // Set at construction, never changed.
  const std::size_t limit_; // 0: unbounded
  const overflow_policy policy_;
  const bool align_; // align_to_sync_points
  const std::weak_ptr<owner_type> owner_;

  // Read and written only with the writer's lock held: shared_.items is full (a push could not
  // grow it), so the next write must make room first.
  bool needs_room_ = false;

  mutable std::mutex mutex_;
  struct shared_part { // guarded by mutex_
    ring<slot_type> items{8};
    std::size_t weight = 0;           // of items
    end_state end = end_state::open;
    error_code reason;                // what the writer closed with
    bool lagged = false;              // a drop_oldest overflow happened since the last read
    bool gap_reported = false;        // lagged was reported and nothing was read since
    std::uint64_t dropped = 0;        // weight lost to drop_oldest, in total
    read_op_base* waiting = nullptr;  // the outstanding read while it is parked (not posted)
    std::uint64_t end_pos = 0;        // the position after the last item pushed or skipped
    bool skipping = false;            // aligned: skips what is written until a sync point
  } shared_;
  std::uint64_t batch_end_ = 0;       // guarded by mutex_: the position after the batch's items

  // Set (under mutex_) by detach() and by push() cutting the stream off; acquired by dead() and
  // detached(), which the writer and the reading side call without mutex_. Each is a flag on its
  // own: everything else they imply is read under mutex_ again.
  std::atomic<bool> dead_{false};
  std::atomic<bool> detached_{false};

  // The reading side, on its own cache line so that the writer's appends and the reader's reads
  // do not share one. The read position `reading_` hands the batch from one read to the next: the
  // acquire exchange in acquire_reader() pairs with the release store in release_reader().
  alignas(64) std::atomic<bool> reading_{false};
  read_batch<Item> batch_;
};

} // namespace detail
BYTECAST_NAMESPACE_END

#endif // BYTECAST_DETAIL_READER_QUEUE_HPP
