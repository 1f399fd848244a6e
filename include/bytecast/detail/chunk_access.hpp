// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_CHUNK_ACCESS_HPP
#define BYTECAST_DETAIL_CHUNK_ACCESS_HPP

// What the machinery may do with a chunk's block that users may not: make handles that adopt
// references counted in bulk, and take a chunk apart into its block and back.

#include <bytecast/chunk.hpp>
#include <bytecast/detail/chunk_block.hpp>
#include <bytecast/detail/config.hpp>

#include <cassert>
#include <cstddef>
#include <utility>

BYTECAST_NAMESPACE_BEGIN
namespace detail {

struct chunk_access {
  // Adopts one reference of `block` (the caller already counted it): the whole block.
  [[nodiscard]] static chunk adopt(chunk_block* block) noexcept {
    return chunk(block, block->payload(), block->size());
  }

  // Adds `n` references to the block of `c`, for `n` later alias() calls.
  static void add_refs(const chunk& c, std::size_t n) noexcept {
    if (c.block_ != nullptr && n != 0) c.block_->add_refs(n);
  }

  // Another handle on `c` that adopts a reference counted by add_refs().
  [[nodiscard]] static chunk alias(const chunk& c) noexcept { return chunk(c.block_, c.data_, c.size_); }

  // Moves the block reference out of `c`, a whole-block chunk (every chunk a writer makes is one),
  // leaving it empty.
  [[nodiscard]] static chunk_block* release(chunk& c) noexcept {
    assert(c.block_ == nullptr || (c.data_ == c.block_->payload() && c.size_ == c.block_->size()));
    c.data_ = nullptr;
    c.size_ = 0;
    return std::exchange(c.block_, nullptr);
  }

  // Sync points (bytecast::sync_point): a flag of the block, set by the writer before the chunk
  // is shared.
  static void mark_sync_point(chunk& c) noexcept {
    if (c.block_ != nullptr) c.block_->mark_sync_point();
  }
  [[nodiscard]] static bool is_sync_point(const chunk& c) noexcept { return c.block_ != nullptr && c.block_->sync_point(); }

  // The bytes of `block` from `offset` on, with a reference of their own.
  [[nodiscard]] static chunk tail_of(chunk_block* block, std::size_t offset) noexcept {
    const std::size_t size = block == nullptr ? 0 : block->size();
    if (offset >= size) return {};
    block->add_refs(1);
    return chunk(block, block->payload() + offset, size - offset);
  }
};

} // namespace detail
BYTECAST_NAMESPACE_END

#endif // BYTECAST_DETAIL_CHUNK_ACCESS_HPP
