// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_CHUNK_HPP
#define BYTECAST_CHUNK_HPP

#include <atomic>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <span>
#include <utility>

// The block pool below is left out under AddressSanitizer, so that a use of a
// chunk's bytes after its last handle is gone is still caught. Define
// BYTECAST_NO_BLOCK_POOL to leave it out anyway.
#if !defined(BYTECAST_NO_BLOCK_POOL)
#  if defined(__SANITIZE_ADDRESS__)
#    define BYTECAST_NO_BLOCK_POOL 1
#  elif defined(__has_feature)
#    if __has_feature(address_sanitizer)
#      define BYTECAST_NO_BLOCK_POOL 1
#    endif
#  endif
#endif

namespace bytecast {
namespace detail {

// Recycles the memory of large chunks (4 KiB to 1 MiB). glibc gives freed
// blocks of that size back to the kernel when they end up at the top of the
// heap, and a writer that keeps allocating them then page-faults on every 4 KiB
// of every chunk it fills: at 64 KiB chunks that took most of the writer's time.
// A small process-wide cache keeps them instead: per size class a stack under
// its own lock, at most `budget` bytes in all. A size is rounded up to the next
// quarter of a power of two (at most 25% slack), so nearby sizes share a class.
// Smaller chunks stay with malloc, whose per-thread caches are fast already.
class block_pool {
 public:
  static constexpr std::size_t min_size = 4096;
  static constexpr std::size_t max_size = std::size_t{1} << 20;
  static constexpr std::size_t budget = std::size_t{4} << 20;
  static constexpr std::size_t per_class = 64;
  static constexpr std::size_t not_pooled = ~std::size_t{0};

  // The bytes a payload of `size` gets, and its class (or not_pooled).
  [[nodiscard]] static constexpr std::size_t class_of(std::size_t size, std::size_t& capacity) noexcept {
#if defined(BYTECAST_NO_BLOCK_POOL)
    capacity = size;
    return not_pooled;
#else
    if (size < min_size || size > max_size) {
      capacity = size;
      return not_pooled;
    }
    const auto k = static_cast<std::size_t>(std::bit_width(size - 1)) - 1; // 2^k < size <= 2^(k+1)
    const std::size_t step = std::size_t{1} << (k - 2);
    const std::size_t quarters = (size + step - 1) / step; // 5..8
    capacity = quarters * step;
    return (k - 11) * 4 + (quarters - 5);
#endif
  }

  [[nodiscard]] static block_pool& instance() noexcept {
    // Never destroyed: chunks may be released during static destruction.
    alignas(block_pool) static unsigned char storage[sizeof(block_pool)];
    static block_pool* pool = ::new (static_cast<void*>(storage)) block_pool;
    return *pool;
  }

  // A cached block of class `c`, or null.
  [[nodiscard]] void* take(std::size_t c, std::size_t capacity) noexcept {
    auto& cl = classes_[c];
    std::lock_guard lock(cl.mutex);
    if (cl.count == 0) return nullptr;
    cached_.fetch_sub(capacity, std::memory_order_relaxed);
    return cl.blocks[--cl.count];
  }

  // Keeps `p` (a block of class `c`) if the budget allows; false: free it.
  [[nodiscard]] bool give(std::size_t c, std::size_t capacity, void* p) noexcept {
    if (cached_.load(std::memory_order_relaxed) + capacity > budget) return false;
    auto& cl = classes_[c];
    std::lock_guard lock(cl.mutex);
    if (cl.count == per_class) return false;
    cached_.fetch_add(capacity, std::memory_order_relaxed);
    cl.blocks[cl.count++] = p;
    return true;
  }

 private:
  static constexpr std::size_t class_count = (20 - 11) * 4; // 4 KiB (k = 11, 8/4) .. 1 MiB (k = 19)
  struct size_class {
    std::mutex mutex;
    std::size_t count = 0;
    void* blocks[per_class];
  };
  std::atomic<std::size_t> cached_{0};
  size_class classes_[class_count];
};

// Header and payload share one allocation: a write costs one allocation and one
// copy, whatever the number of streams. The payload follows an 8-byte header
// (with malloc's own 8 bytes, a 64-byte chunk then fits an 80-byte block, not
// a 96-byte one). A payload of 4 GiB or more has its size in 8 more bytes
// between the header and the payload.
struct chunk_block {
  std::atomic<std::uint32_t> refs;
  std::uint32_t small_size; // the size, or `large_size`

  static constexpr std::uint32_t large_size = ~std::uint32_t{0};
  // Handles beyond this many are a bug (each takes memory): abort, do not wrap.
  static constexpr std::uint32_t max_refs = large_size - (std::uint32_t{1} << 24);

  [[nodiscard]] bool large() const noexcept { return small_size == large_size; }

  [[nodiscard]] std::byte* payload() noexcept {
    return reinterpret_cast<std::byte*>(this + 1) + (large() ? sizeof(std::size_t) : 0);
  }

  [[nodiscard]] std::size_t size() const noexcept {
    if (!large()) return small_size;
    std::size_t s;
    std::memcpy(&s, static_cast<const void*>(this + 1), sizeof s);
    return s;
  }

  // Returns a block holding `size` uninitialised bytes and one reference.
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
    return chunk(block, block->payload(), block->size());
  }

  // Adds `n` references to the block of `c`, for `n` later alias() calls.
  static void add_refs(const chunk& c, std::size_t n) noexcept {
    if (c.block_ != nullptr && n != 0) c.block_->add_refs(n);
  }

  // Another handle on `c` that adopts a reference counted by add_refs().
  [[nodiscard]] static chunk alias(const chunk& c) noexcept { return chunk(c.block_, c.data_, c.size_); }

  // Moves the block reference out of `c`, a whole-block chunk (every chunk a
  // writer makes is one), leaving it empty.
  [[nodiscard]] static chunk_block* release(chunk& c) noexcept {
    assert(c.block_ == nullptr || (c.data_ == c.block_->payload() && c.size_ == c.block_->size()));
    c.data_ = nullptr;
    c.size_ = 0;
    return std::exchange(c.block_, nullptr);
  }

  // The bytes of `block` from `offset` on, with a reference of their own.
  [[nodiscard]] static chunk tail_of(chunk_block* block, std::size_t offset) noexcept {
    const std::size_t size = block == nullptr ? 0 : block->size();
    if (offset >= size) return {};
    block->add_refs(1);
    return chunk(block, block->payload() + offset, size - offset);
  }
};

} // namespace detail
} // namespace bytecast

#endif // BYTECAST_CHUNK_HPP
