// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_BLOCK_POOL_HPP
#define BYTECAST_DETAIL_BLOCK_POOL_HPP

// A small process-wide cache of the memory of large chunks (4 KiB to 1 MiB).

#include <bytecast/detail/config.hpp>

#include <atomic>
#include <bit>
#include <cstddef>
#include <mutex>
#include <new>

// Left out under AddressSanitizer, so that a use of a chunk's bytes after its last handle is gone
// is still caught. Define BYTECAST_NO_BLOCK_POOL to leave it out anyway.
#if !defined(BYTECAST_NO_BLOCK_POOL)
#  if defined(__SANITIZE_ADDRESS__)
#    define BYTECAST_NO_BLOCK_POOL 1
#  elif defined(__has_feature)
#    if __has_feature(address_sanitizer)
#      define BYTECAST_NO_BLOCK_POOL 1
#    endif
#  endif
#endif

BYTECAST_NAMESPACE_BEGIN
namespace detail {

// glibc gives freed blocks of these sizes back to the kernel when they end up at the top of the
// heap, and a writer that keeps allocating them then page-faults on every 4 KiB of every chunk it
// fills. The pool keeps them instead: per size class a stack under its own lock, at most `budget`
// bytes in all. A size is rounded up to the next quarter of a power of two (at most 25% slack), so
// nearby sizes share a class. Smaller chunks stay with malloc, whose per-thread caches are fast.
class block_pool {
 public:
  static constexpr std::size_t min_size = 4096;
  static constexpr std::size_t max_size = std::size_t{1} << 20;
  static constexpr std::size_t budget = std::size_t{4} << 20;
  static constexpr std::size_t per_class = 64;
  static constexpr std::size_t not_pooled = ~std::size_t{0};

  // The bytes a payload of `size` gets (`capacity`), and its class (or not_pooled).
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

  // Keeps `p` (a block of class `c`) if the budget allows; false: the caller frees it.
  [[nodiscard]] bool give(std::size_t c, std::size_t capacity, void* p) noexcept {
    // A soft limit: concurrent gives may pass it by a few blocks.
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
    std::size_t count = 0; // guarded by mutex
    void* blocks[per_class];
  };
  std::atomic<std::size_t> cached_{0}; // bytes held by all classes; relaxed: a budget, not a fence
  size_class classes_[class_count];
};

} // namespace detail
BYTECAST_NAMESPACE_END

#endif // BYTECAST_DETAIL_BLOCK_POOL_HPP
