// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_READ_BATCH_HPP
#define BYTECAST_DETAIL_READ_BATCH_HPP

// A reader's batch: what the reading side took out of its queue in one step and reads without any
// lock, and what the last read keeps alive.

#include <bytecast/detail/config.hpp>
#include <bytecast/detail/item_traits.hpp>
#include <bytecast/detail/ring.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <span>
#include <utility>

BYTECAST_NAMESPACE_BEGIN
namespace detail {

// Owned by whoever holds its queue's read position (reader_queue::acquire_reader), except the two
// size snapshots, which anyone may read.
template <class Item>
class read_batch {
 public:
  using traits = item_traits<Item>;
  using slot_type = typename traits::slot_type;

  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }

  // Takes every item of `from` (which weighs `weight`), or only its front one: `from` is the queue's
  // shared part, under the queue's lock.
  void take_all(ring<slot_type>& from, std::size_t weight) noexcept {
    items_.swap(from); // the batch is empty: `from` gets its spare capacity
    weight_ += weight;
    publish();
  }
  void take_front(ring<slot_type>& from, std::size_t weight) noexcept {
    items_.push_back(std::move(from.front())); // the batch is empty: there is room
    from.pop_front();
    weight_ += weight;
    publish();
  }

  // Before the queue is shared: the writer's header, the first item, outside the positions (API.md
  // section 7). It counts in the weight (queued_bytes()) but not in sequence_weight_snapshot().
  void preload_header(slot_type&& header, std::size_t weight) {
    items_.push_back(std::move(header)); // the batch is new and empty: there is room
    weight_ += weight;
    header_left_ = weight;
    publish();
  }

  // Removes the front item and returns it (for a chunk: its unread rest).
  [[nodiscard]] Item pop() noexcept {
    Item item = traits::take(items_.front(), offset_);
    items_.pop_front();
    offset_ = 0;
    header_left_ = 0; // the front item was the header if any of it was left
    weight_ -= traits::weight(item);
    publish();
    return item;
  }

  // Chunks: the unread bytes of the front item, and consuming `n` of them.
  [[nodiscard]] std::span<const std::byte> front_bytes() const noexcept {
    return {items_.front().data() + offset_, items_.front().size() - offset_};
  }
  void consume(std::size_t n) noexcept {
    offset_ += n;
    weight_ -= n;
    header_left_ -= std::min(n, header_left_);
    if (offset_ == items_.front().size()) {
      items_.pop_front();
      offset_ = 0;
    }
    publish();
  }

  // What the last read keeps alive until the next one (the chunk behind a span).
  [[nodiscard]] typename traits::read_hold& hold() noexcept { return hold_; }

  void clear() noexcept {
    items_.clear();
    offset_ = 0;
    weight_ = 0;
    header_left_ = 0;
    hold_ = {};
    publish();
  }

  // Snapshots for the queue's thread-safe queued_*() (any thread).
  [[nodiscard]] std::size_t items_snapshot() const noexcept { return items_snapshot_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::size_t weight_snapshot() const noexcept { return weight_snapshot_.load(std::memory_order_relaxed); }
  // The unread weight without the header: bytes of the writer's sequence still to deliver.
  [[nodiscard]] std::size_t sequence_weight_snapshot() const noexcept {
    return sequence_snapshot_.load(std::memory_order_relaxed);
  }

 private:
  void publish() noexcept {
    items_snapshot_.store(items_.size(), std::memory_order_relaxed);
    weight_snapshot_.store(weight_, std::memory_order_relaxed);
    sequence_snapshot_.store(weight_ - header_left_, std::memory_order_relaxed);
  }

  static constexpr std::size_t initial_capacity = 8;

  ring<slot_type> items_{initial_capacity};
  std::size_t offset_ = 0; // bytes of items_.front() already read
  std::size_t weight_ = 0; // unread weight of items_
  std::size_t header_left_ = 0; // unread bytes of the header, the front item (byte streams)
  [[no_unique_address]] typename traits::read_hold hold_{};
  // Relaxed copies of the size, written by the reading side only: a snapshot, nothing is read
  // through them.
  std::atomic<std::size_t> items_snapshot_{0};
  std::atomic<std::size_t> weight_snapshot_{0};
  std::atomic<std::size_t> sequence_snapshot_{0};
};

} // namespace detail
BYTECAST_NAMESPACE_END

#endif // BYTECAST_DETAIL_READ_BATCH_HPP
