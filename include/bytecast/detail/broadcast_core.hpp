// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_BROADCAST_CORE_HPP
#define BYTECAST_DETAIL_BROADCAST_CORE_HPP

#include <bytecast/detail/config.hpp>
#include <bytecast/detail/reader_queue.hpp>
#include <bytecast/detail/stream_service.hpp>
#include <bytecast/options.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <system_error>
#include <vector>

namespace bytecast::detail {

// One counter for every writer kind (byte and typed): the first writer gets 1.
[[nodiscard]] inline std::uint64_t next_writer_id() noexcept {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

// The writer's side of a broadcast: the list of reader queues, the open flag and
// the replay window. Byte writers broadcast `chunk`s (shared, never copied),
// typed writers broadcast values (one copy per stream).
template <class Item>
class broadcast_core {
 public:
  using queue_type = reader_queue<Item>;
  using traits = item_traits<Item>;

  broadcast_core(std::shared_ptr<queue_registry> registry, const writer_options& options)
      : registry_(std::move(registry)), options_(options) {}

  broadcast_core(const broadcast_core&) = delete;
  broadcast_core& operator=(const broadcast_core&) = delete;

  [[nodiscard]] const writer_options& options() const noexcept { return options_; }

  // A new reader queue; with `replay`, preloaded with the retained recent items.
  [[nodiscard]] std::shared_ptr<queue_type> subscribe(bool replay) {
    auto q = std::make_shared<queue_type>(registry_);
    std::lock_guard lock(mutex_);
    if (replay)
      for (const Item& item : replay_) q->preload(item, traits::weight(item), false);
    if (open_)
      queues_.push_back(q);
    else
      q->mark_closed();
    return q;
  }

  // Delivers `item` to every live queue, in one global order (the writer's lock
  // is held across all queues, so concurrent writes never interleave).
  std::error_code publish(Item&& item) {
    const std::size_t weight = traits::weight(item);
    std::lock_guard lock(mutex_);
    if (!open_) return asio::error::broken_pipe;
    if (options_.queue_limit != 0 && options_.on_overflow == overflow_policy::wait && any_full_locked(weight))
      return asio::error::would_block;
    const bool retain = options_.replay_limit != 0;
    bool prune = false;
    for (std::size_t i = 0, n = queues_.size(); i < n; ++i) {
      const bool last = i + 1 == n && !retain;
      prune |= !queues_[i]->push(last ? std::move(item) : Item(item), weight, options_);
    }
    if (prune) prune_locked();
    if (retain) retain_locked(std::move(item), weight);
    written_.fetch_add(weight, std::memory_order_relaxed);
    return {};
  }

  // Idempotent: every live queue gets the sentinel after what it holds.
  void close() {
    std::lock_guard lock(mutex_);
    prune_locked();
    if (!open_) return;
    open_ = false;
    open_flag_.store(false, std::memory_order_release);
    for (auto& q : queues_) q->close();
  }

  [[nodiscard]] bool is_open() const noexcept { return open_flag_.load(std::memory_order_acquire); }

  [[nodiscard]] std::uint64_t written() const noexcept { return written_.load(std::memory_order_relaxed); }

  [[nodiscard]] std::size_t stream_count() const {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(
        std::count_if(queues_.begin(), queues_.end(), [](const auto& q) { return !q->dead(); }));
  }

 private:
  [[nodiscard]] bool any_full_locked(std::size_t weight) const {
    return std::any_of(queues_.begin(), queues_.end(),
                       [&](const auto& q) { return q->full_for(weight, options_.queue_limit); });
  }

  void prune_locked() {
    std::erase_if(queues_, [](const auto& q) { return q->dead(); });
  }

  // Keeps the newest whole items that fit in replay_limit.
  void retain_locked(Item&& item, std::size_t weight) {
    replay_.push_back(std::move(item));
    replay_weight_ += weight;
    while (!replay_.empty() && replay_weight_ > options_.replay_limit) {
      replay_weight_ -= traits::weight(replay_.front());
      replay_.pop_front();
    }
  }

  const std::shared_ptr<queue_registry> registry_;
  const writer_options options_;
  std::atomic<std::uint64_t> written_{0};
  std::atomic<bool> open_flag_{true}; // mirrors open_ for the lock-free is_open()

  mutable std::mutex mutex_;
  // Guarded by mutex_:
  std::vector<std::shared_ptr<queue_type>> queues_; // streams still fed
  std::deque<Item> replay_;                         // newest items, oldest first
  std::size_t replay_weight_ = 0;
  bool open_ = true;
};

} // namespace bytecast::detail

#endif // BYTECAST_DETAIL_BROADCAST_CORE_HPP
