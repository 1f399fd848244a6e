// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_CHUNK_HPP
#define BYTECAST_CHUNK_HPP

#include <bytecast/detail/chunk_block.hpp>
#include <bytecast/detail/config.hpp>

#include <cstddef>
#include <cstring>
#include <span>
#include <utility>

BYTECAST_NAMESPACE_BEGIN

/// An immutable, reference-counted byte buffer: what one write broadcasts. Copies share the bytes,
/// which live as long as any copy does. Thread-safe like `std::shared_ptr`: copies may be used and
/// destroyed on any thread.
///
/// Exceptions: every member is nothrow except `copy_of` (strong: `std::bad_alloc`).
class chunk {
 public:
  /// An empty chunk.
  chunk() noexcept = default;

  /// Another handle on the same bytes.
  chunk(const chunk& other) noexcept : block_(other.block_), data_(other.data_), size_(other.size_) {
    if (block_ != nullptr) block_->add_refs(1);
  }

  /// Takes `other`'s bytes; `other` is left empty.
  chunk(chunk&& other) noexcept
      : block_(std::exchange(other.block_, nullptr)),
        data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}

  /// Shares `other`'s bytes, releasing the ones held before.
  chunk& operator=(const chunk& other) noexcept {
    chunk(other).swap(*this);
    return *this;
  }

  /// Takes `other`'s bytes, releasing the ones held before; `other` is left empty.
  chunk& operator=(chunk&& other) noexcept {
    chunk(std::move(other)).swap(*this);
    return *this;
  }

  /// Releases the bytes (freed with the last handle).
  ~chunk() {
    if (block_ != nullptr) block_->release();
  }

  /// A chunk holding a copy of `bytes` (empty bytes give an empty chunk, with no allocation).
  [[nodiscard]] static chunk copy_of(std::span<const std::byte> bytes) {
    if (bytes.empty()) return {};
    auto* block = detail::chunk_block::allocate(bytes.size());
    std::memcpy(block->payload(), bytes.data(), bytes.size());
    return chunk(block, block->payload(), bytes.size());
  }

  /// The first byte (null when empty).
  [[nodiscard]] const std::byte* data() const noexcept { return data_; }
  /// The number of bytes.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// True when there are no bytes.
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  /// The bytes, as a span.
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }

  /// Exchanges the bytes of two handles.
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

BYTECAST_NAMESPACE_END

#endif // BYTECAST_CHUNK_HPP
