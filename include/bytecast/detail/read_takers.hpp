// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_READ_TAKERS_HPP
#define BYTECAST_DETAIL_READ_TAKERS_HPP

// What each kind of read makes of its queue's batch, or of the news that comes instead: the one
// part of a read that differs between async_next, async_next_chunk and async_read_some.

#include <bytecast/chunk.hpp>
#include <bytecast/detail/config.hpp>
#include <bytecast/detail/reader_queue.hpp>
#include <bytecast/error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <optional>
#include <span>

BYTECAST_NAMESPACE_BEGIN
namespace detail {

// The error a read of `q` completes with for `n` (none for the sentinel, whose value is empty).
template <class Queue>
[[nodiscard]] error_code news_error(const Queue& q, news n) {
  switch (n) {
    case news::lagged:
      return error::lagged;
    case news::eof:
      return asio::error::eof;
    case news::overflowed:
      return error::overflowed;
    case news::aborted:
      return asio::error::operation_aborted;
    case news::failed:
      return q.close_reason();
    case news::items:
    case news::wait:
    case news::sentinel:
      break;
  }
  return {};
}

// async_next / try_next on a byte stream: the next chunk, as a span into the chunk the queue holds
// until the next read.
struct next_span_taker {
  using value_type = std::span<const std::byte>;
  template <class Queue>
  void from_batch(Queue& q, error_code&, value_type& v) {
    auto& batch = q.batch();
    batch.hold().clear();
    batch.hold().current = batch.pop();
    v = batch.hold().current.bytes();
  }
  template <class Queue>
  void from_news(Queue& q, news n, error_code& ec, value_type&) {
    q.batch().hold().clear();
    ec = news_error(q, n);
  }
};

// async_next_chunk on a byte stream (Value: chunk), async_next / try_next on a typed stream
// (Value: std::optional<T>): the item itself.
template <class Value>
struct next_item_taker {
  using value_type = Value;
  template <class Queue>
  void from_batch(Queue& q, error_code&, value_type& v) {
    v.emplace(q.batch().pop()); // T need not be assignable
  }
  template <class Queue>
  void from_news(Queue& q, news n, error_code& ec, value_type&) {
    ec = news_error(q, n);
  }
};

template <>
struct next_item_taker<chunk> {
  using value_type = chunk;
  template <class Queue>
  void from_batch(Queue& q, error_code&, value_type& v) {
    v = q.batch().pop();
  }
  template <class Queue>
  void from_news(Queue& q, news n, error_code& ec, value_type&) {
    ec = news_error(q, n);
  }
};

// async_read_some: bytes copied from the front of the backlog; the sentinel reads as eof.
template <class MutableBufferSequence>
struct read_some_taker {
  using value_type = std::size_t;
  MutableBufferSequence buffers;

  // A zero-size read completes with 0 and takes nothing.
  [[nodiscard]] bool reads_nothing() const { return asio::buffer_size(buffers) == 0; }

  template <class Queue>
  void from_batch(Queue& q, error_code&, value_type& copied) {
    copied = 0;
    auto& batch = q.batch();
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
      asio::mutable_buffer target(*it);
      while (target.size() != 0 && !batch.empty()) {
        const auto bytes = batch.front_bytes();
        const std::size_t n = std::min(target.size(), bytes.size());
        std::memcpy(target.data(), bytes.data(), n);
        target += n;
        copied += n;
        batch.consume(n);
      }
      if (batch.empty()) break;
    }
  }
  template <class Queue>
  void from_news(Queue& q, news n, error_code& ec, value_type&) {
    ec = n == news::sentinel ? error_code(asio::error::eof) : news_error(q, n);
  }
};

// async_next_batch / try_next_batch: every queued chunk, oldest first, up to `max_bytes` in all
// (always at least one whole chunk), as buffers into chunks the queue holds until the next read.
struct next_batch_taker {
  using value_type = std::span<const asio::const_buffer>;
  std::size_t max_bytes;

  // Strong: room is made before each chunk leaves the batch, so a throw loses none.
  template <class Queue>
  void from_batch(Queue& q, error_code&, value_type& v) {
    auto& batch = q.batch();
    auto& hold = batch.hold();
    hold.clear();
    std::size_t total = 0;
    for (;;) {
      while (!batch.empty()) {
        const std::size_t size = batch.front_bytes().size();
        if (!hold.chunks.empty() && (total >= max_bytes || size > max_bytes - total)) return publish(hold, v);
        hold.chunks.reserve(hold.chunks.size() + 1);
        hold.buffers.reserve(hold.chunks.size() + 1);
        hold.chunks.push_back(batch.pop());
        hold.buffers.push_back(asio::buffer(hold.chunks.back().data(), size));
        total += size;
      }
      if (total >= max_bytes || !q.refill_more()) return publish(hold, v);
    }
  }
  template <class Queue>
  void from_news(Queue& q, news n, error_code& ec, value_type&) {
    q.batch().hold().clear();
    ec = news_error(q, n);
  }

 private:
  template <class Hold>
  static void publish(Hold& hold, value_type& v) noexcept {
    v = {hold.buffers.data(), hold.buffers.size()};
  }
};

template <class Taker>
[[nodiscard]] bool reads_nothing(const Taker& taker) {
  if constexpr (requires { taker.reads_nothing(); })
    return taker.reads_nothing();
  else
    return false;
}

} // namespace detail
BYTECAST_NAMESPACE_END

#endif // BYTECAST_DETAIL_READ_TAKERS_HPP
