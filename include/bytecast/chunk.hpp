// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_CHUNK_HPP
#define BYTECAST_CHUNK_HPP

#include <atomic>
#include <cstddef>
#include <cstring>
#include <new>
#include <span>
#include <utility>

namespace bytecast {
namespace detail {

// Header and payload share one allocation: a write costs one allocation and one
// copy, whatever the number of streams. The payload follows the header.
struct chunk_block {
  std::atomic<std::size_t> refs;
  std::size_t size;

  [[nodiscard]] std::byte* payload() noexcept { return reinterpret_cast<std::byte*>(this + 1); }

  // Returns a block holding `size` uninitialised bytes and one reference.
  static chunk_block* allocate(std::size_t size) {
    void* p = ::operator new(sizeof(chunk_block) + size);
    return ::new (p) chunk_block{{1}, size};
  }

  void add_refs(std::size_t n) noexcept { refs.fetch_add(n, std::memory_order_relaxed); }

  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      this->~chunk_block();
      ::operator delete(this);
    }
  }
};

struct chunk_access;

} // namespace detail

/// An immutable, reference-counted byte buffer. Copies share the bytes; the
/// bytes live as long as any copy does. Thread-safe like `std::shared_ptr`.
class chunk {
 public:
  chunk() noexcept = default;

  chunk(const chunk& other) noexcept : block_(other.block_), data_(other.data_), size_(other.size_) {
    if (block_ != nullptr) block_->add_refs(1);
  }

  chunk(chunk&& other) noexcept
      : block_(std::exchange(other.block_, nullptr)),
        data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}

  chunk& operator=(const chunk& other) noexcept {
    chunk(other).swap(*this);
    return *this;
  }

  chunk& operator=(chunk&& other) noexcept {
    chunk(std::move(other)).swap(*this);
    return *this;
  }

  ~chunk() {
    if (block_ != nullptr) block_->release();
  }

  /// A chunk holding a copy of `bytes` (empty bytes give an empty chunk, no allocation).
  [[nodiscard]] static chunk copy_of(std::span<const std::byte> bytes) {
    if (bytes.empty()) return {};
    auto* block = detail::chunk_block::allocate(bytes.size());
    std::memcpy(block->payload(), bytes.data(), bytes.size());
    return chunk(block, block->payload(), bytes.size());
  }

  [[nodiscard]] const std::byte* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }

  void swap(chunk& other) noexcept {
    std::swap(block_, other.block_);
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
  }

 private:
  friend struct detail::chunk_access;

  // Adopts one reference of `block`.
  chunk(detail::chunk_block* block, const std::byte* data, std::size_t size) noexcept
      : block_(block), data_(data), size_(size) {}

  detail::chunk_block* block_ = nullptr;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

namespace detail {

struct chunk_access {
  // Adopts one reference of `block` (the caller already counted it).
  [[nodiscard]] static chunk adopt(chunk_block* block) noexcept {
    return chunk(block, block->payload(), block->size);
  }

  // Adds `n` references to the block of `c`, for `n` later alias() calls.
  static void add_refs(const chunk& c, std::size_t n) noexcept {
    if (c.block_ != nullptr && n != 0) c.block_->add_refs(n);
  }

  // Another handle on `c` that adopts a reference counted by add_refs().
  [[nodiscard]] static chunk alias(const chunk& c) noexcept { return chunk(c.block_, c.data_, c.size_); }

  // The bytes of `c` from `offset` on, sharing its block.
  [[nodiscard]] static chunk tail(const chunk& c, std::size_t offset) noexcept {
    if (offset >= c.size_) return {};
    if (c.block_ != nullptr) c.block_->add_refs(1);
    return chunk(c.block_, c.data_ + offset, c.size_ - offset);
  }
};

} // namespace detail
} // namespace bytecast

#endif // BYTECAST_CHUNK_HPP
