// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_RING_HPP
#define BYTECAST_DETAIL_RING_HPP

// A growable circular buffer that can be made to have room before a push.

#include <bytecast/detail/config.hpp>

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

BYTECAST_NAMESPACE_BEGIN
namespace detail {

// A growable circular buffer (capacity 0 or a power of two). Unlike std::deque
// it can be made to have room before a push, so that a push itself never
// allocates: that is what lets a write reach every stream or none.
template <class T>
class ring {
 public:
  ring() noexcept = default;

  // `capacity` must be a power of two.
  explicit ring(std::size_t capacity) : data_(allocate(capacity)), capacity_(capacity) {}

  ring(ring&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        capacity_(std::exchange(other.capacity_, 0)),
        head_(std::exchange(other.head_, 0)),
        size_(std::exchange(other.size_, 0)) {}

  ring& operator=(ring&& other) noexcept {
    ring(std::move(other)).swap(*this);
    return *this;
  }

  ring(const ring&) = delete;
  ring& operator=(const ring&) = delete;

  ~ring() {
    clear();
    deallocate(data_, capacity_);
  }

  void swap(ring& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(capacity_, other.capacity_);
    std::swap(head_, other.head_);
    std::swap(size_, other.size_);
  }

  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] bool full() const noexcept { return size_ == capacity_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  [[nodiscard]] T& front() noexcept { return data_[head_]; }
  [[nodiscard]] const T& front() const noexcept { return data_[head_]; }
  [[nodiscard]] const T& operator[](std::size_t i) const noexcept { return data_[(head_ + i) & (capacity_ - 1)]; }

  // Precondition: !full(). Does not allocate.
  void push_back(T&& value) noexcept(std::is_nothrow_move_constructible_v<T>) {
    ::new (static_cast<void*>(data_ + ((head_ + size_) & (capacity_ - 1)))) T(std::move(value));
    ++size_;
  }

  void pop_front() noexcept {
    data_[head_].~T();
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
  }

  void clear() noexcept {
    while (!empty()) pop_front();
    head_ = 0;
  }

  // Doubles the capacity (at least 8). Strong guarantee: on an exception the
  // ring is unchanged.
  void grow() {
    const std::size_t capacity = capacity_ < 4 ? 8 : capacity_ * 2;
    T* data = allocate(capacity);
    std::size_t moved = 0;
    try {
      for (; moved < size_; ++moved)
        ::new (static_cast<void*>(data + moved)) T(std::move_if_noexcept(data_[(head_ + moved) & (capacity_ - 1)]));
    } catch (...) {
      for (std::size_t i = 0; i < moved; ++i) data[i].~T();
      deallocate(data, capacity);
      throw;
    }
    const std::size_t size = size_;
    clear();
    deallocate(data_, capacity_);
    data_ = data;
    capacity_ = capacity;
    head_ = 0;
    size_ = size;
  }

 private:
  static T* allocate(std::size_t n) { return n == 0 ? nullptr : std::allocator<T>().allocate(n); }
  static void deallocate(T* p, std::size_t n) noexcept {
    if (p != nullptr) std::allocator<T>().deallocate(p, n);
  }

  T* data_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

} // namespace detail
BYTECAST_NAMESPACE_END

#endif // BYTECAST_DETAIL_RING_HPP
