// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_CHUNK_BLOCK_HPP
#define BYTECAST_DETAIL_CHUNK_BLOCK_HPP

// The memory of one chunk: a reference count and the size, followed by the bytes.

#include <bytecast/detail/block_pool.hpp>
#include <bytecast/detail/config.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

BYTECAST_NAMESPACE_BEGIN
namespace detail {

// Header and payload share one allocation: a write costs one allocation and one copy, whatever the
// number of streams. The payload follows an 8-byte header (with malloc's own 8 bytes, a 64-byte
// chunk then fits an 80-byte block, not a 96-byte one): the reference count, and the size with one
// bit saying whether the chunk is a sync point (bytecast::sync_point). A payload of 2 GiB or more
// has its size in 8 more bytes between the header and the payload.
struct chunk_block {
  // Handles on this block. Increments are relaxed (a new handle is made from an existing one);
  // the acq_rel decrement in release() orders every handle's last use before the free.
  std::atomic<std::uint32_t> refs;
  std::uint32_t size_field; // the size (or `large_size`), and `sync_bit`; set before the block is shared

  static constexpr std::uint32_t sync_bit = std::uint32_t{1} << 31;
  static constexpr std::uint32_t large_size = sync_bit - 1; // the size is in the 8 bytes after the header
  // Handles beyond this many are a bug (each takes memory): abort, do not wrap.
  static constexpr std::uint32_t max_refs = ~std::uint32_t{0} - (std::uint32_t{1} << 24);

  [[nodiscard]] bool large() const noexcept { return (size_field & ~sync_bit) == large_size; }
  [[nodiscard]] bool sync_point() const noexcept { return (size_field & sync_bit) != 0; }
  void mark_sync_point() noexcept { size_field |= sync_bit; }

  [[nodiscard]] std::byte* payload() noexcept {
    return reinterpret_cast<std::byte*>(this + 1) + (large() ? sizeof(std::size_t) : 0);
  }

  [[nodiscard]] std::size_t size() const noexcept {
    if (!large()) return size_field & ~sync_bit;
    std::size_t s;
    std::memcpy(&s, static_cast<const void*>(this + 1), sizeof s);
    return s;
  }

  // A block holding `size` uninitialised bytes and one reference.
  static chunk_block* allocate(std::size_t size) {
    const bool is_large = size >= large_size;
    std::size_t capacity = 0;
    const std::size_t c = block_pool::class_of(size, capacity); // never pooled when large
    void* p = c == block_pool::not_pooled ? nullptr : block_pool::instance().take(c, capacity);
    if (p == nullptr) p = ::operator new(sizeof(chunk_block) + (is_large ? sizeof(std::size_t) : 0) + capacity);
    auto* block = ::new (p) chunk_block{{1}, is_large ? large_size : static_cast<std::uint32_t>(size)};
    if (is_large) std::memcpy(static_cast<void*>(block + 1), &size, sizeof size);
    return block;
  }

  void add_refs(std::size_t n) noexcept {
    if (n > max_refs || refs.fetch_add(static_cast<std::uint32_t>(n), std::memory_order_relaxed) > max_refs - n)
      std::abort();
  }

  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      const std::size_t bytes = size();
      this->~chunk_block();
      std::size_t capacity = 0;
      const std::size_t c = block_pool::class_of(bytes, capacity);
      if (c != block_pool::not_pooled && block_pool::instance().give(c, capacity, this)) return;
      ::operator delete(this);
    }
  }
};

// What bytecast's machinery may do with a chunk's block (see chunk_access.hpp).
struct chunk_access;

} // namespace detail
BYTECAST_NAMESPACE_END

#endif // BYTECAST_DETAIL_CHUNK_BLOCK_HPP
