// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_ITEM_TRAITS_HPP
#define BYTECAST_DETAIL_ITEM_TRAITS_HPP

// Everything that differs between byte writers (chunks) and typed writers (values of T): how an
// item is handed to many streams, what a queue stores for it, what it weighs, how a read takes it
// out, and what a read keeps alive after it completes. The shared machinery asks only this.

#include <bytecast/chunk.hpp>
#include <bytecast/detail/chunk_access.hpp>
#include <bytecast/detail/config.hpp>

#include <cstddef>
#include <cstring>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

BYTECAST_NAMESPACE_BEGIN
namespace detail {

// A queued chunk in 8 bytes (a chunk handle takes 24): the block it holds one reference of. Every
// chunk a writer makes is a whole block, so the block alone says where its bytes are. A queue holds
// one slot per chunk per stream, so this is most of what a queued chunk costs beyond its bytes.
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
  [[nodiscard]] bool sync_point() const noexcept { return block_ != nullptr && block_->sync_point(); }

  // The bytes from `offset` on, as a chunk; the slot is left empty.
  [[nodiscard]] chunk take(std::size_t offset) noexcept {
    if (offset == 0) return block_ == nullptr ? chunk{} : chunk_access::adopt(std::exchange(block_, nullptr));
    return chunk_access::tail_of(block_, offset); // the slot keeps its own reference until popped
  }

 private:
  chunk_block* block_;
};

// Typed values: each stream gets its own copy, all made before any stream sees one.
template <class Item>
struct item_traits {
  using slot_type = Item;

  // What a read keeps alive until the next read on its stream: nothing, values are moved out.
  struct read_hold {
    void clear() noexcept {}
  };

  [[nodiscard]] static std::size_t weight(const Item&) noexcept { return 1; }
  // Positions, headers and sync points (API.md section 7) are for byte writers only.
  static constexpr bool has_positions = false;
  [[nodiscard]] static bool is_sync(const Item&) noexcept { return false; }

  // The copies of one write for `n` queues (the writer's state, reused from write to write).
  class fanout {
   public:
    // Strong: if a copy throws, nothing is kept and the exception propagates.
    void prepare(const Item& item, std::size_t n) {
      copies_.clear();
      try {
        copies_.reserve(n);
        for (std::size_t i = 0; i < n; ++i) copies_.push_back(item);
      } catch (...) {
        copies_.clear();
        throw;
      }
    }
    [[nodiscard]] Item next(const Item&, std::size_t i) noexcept { return std::move(copies_[i]); }
    void done() noexcept { copies_.clear(); }

   private:
    std::vector<Item> copies_;
  };

  [[nodiscard]] static Item take(slot_type& slot, std::size_t) noexcept { return std::move(slot); }
  [[nodiscard]] static slot_type copy_slot(const Item& item) { return Item(item); }
};

// Chunks: every stream shares the one chunk; only its reference count grows.
template <>
struct item_traits<chunk> {
  using slot_type = chunk_slot;

  // What the last read handed out by reference: the chunk behind the span of async_next /
  // try_next, or the chunks and buffers of a batch read. Kept until the next read.
  struct read_hold {
    chunk current;
    std::vector<chunk> chunks;
    std::vector<asio::const_buffer> buffers;
    void clear() noexcept {
      current = {};
      chunks.clear(); // keeps the capacity: batch reads of a loop reuse it
      buffers.clear();
    }
  };

  [[nodiscard]] static std::size_t weight(const chunk& c) noexcept { return c.size(); }
  [[nodiscard]] static std::size_t weight(const chunk_slot& s) noexcept { return s.size(); }
  static constexpr bool has_positions = true;
  [[nodiscard]] static bool is_sync(const chunk& c) noexcept { return chunk_access::is_sync_point(c); }
  [[nodiscard]] static bool is_sync(const chunk_slot& s) noexcept { return s.sync_point(); }

  class fanout {
   public:
    // One atomic add for all the streams of a write, not one per stream.
    static void prepare(const chunk& c, std::size_t n) noexcept { chunk_access::add_refs(c, n); }
    [[nodiscard]] static chunk next(const chunk& c, std::size_t) noexcept { return chunk_access::alias(c); }
    static void done() noexcept {}
  };

  [[nodiscard]] static chunk take(slot_type& slot, std::size_t offset) noexcept { return slot.take(offset); }
  [[nodiscard]] static slot_type copy_slot(const chunk& c) noexcept { return slot_type(chunk(c)); }
};

} // namespace detail
BYTECAST_NAMESPACE_END

#endif // BYTECAST_DETAIL_ITEM_TRAITS_HPP
