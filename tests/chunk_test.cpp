// Tests for bytecast::chunk (chunk.hpp).
#include "test_util.hpp"

#include <cstring>
#include <iterator>
#include <type_traits>
#include <vector>

using namespace bytecast_test;

TEST_CASE("chunk: the accessors are noexcept and the type is copyable") {
  CHECK(std::is_default_constructible_v<bytecast::chunk>);
  CHECK(std::is_copy_constructible_v<bytecast::chunk>);
  CHECK(std::is_copy_assignable_v<bytecast::chunk>);
  const bytecast::chunk c;
  CHECK(noexcept(c.data()));
  CHECK(noexcept(c.size()));
  CHECK(noexcept(c.empty()));
  CHECK(noexcept(c.bytes()));
  CHECK(std::is_same_v<decltype(c.data()), const std::byte*>);
  CHECK(std::is_same_v<decltype(c.size()), std::size_t>);
  CHECK(std::is_same_v<decltype(c.empty()), bool>);
  CHECK(std::is_same_v<decltype(c.bytes()), std::span<const std::byte>>);
}

TEST_CASE("chunk: a default-constructed chunk is empty") {
  const bytecast::chunk c;
  CHECK(c.empty());
  CHECK(c.size() == 0);
  CHECK(c.bytes().empty());
  CHECK(c.bytes().size() == 0);
}

TEST_CASE("chunk: data, size and bytes describe exactly the written bytes") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  const std::string text = "the quick brown fox";
  REQUIRE(w.write(text) == text.size());

  const bytecast::chunk c = take_chunk(ctx, s);
  CHECK_FALSE(c.empty());
  REQUIRE(c.size() == text.size());
  REQUIRE(c.data() != nullptr);
  CHECK(std::memcmp(c.data(), text.data(), text.size()) == 0);
  CHECK(c.bytes().data() == c.data());
  CHECK(c.bytes().size() == c.size());
  CHECK(to_string(c.bytes()) == text);
}

TEST_CASE("chunk: a copy is cheap and shares the same bytes") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  const auto payload = make_bytes(100000, 3);
  w.write(payload);

  const bytecast::chunk c = take_chunk(ctx, s);
  REQUIRE(c.size() == payload.size());

  const bytecast::chunk copy = c;  // NOLINT(performance-unnecessary-copy-initialization)
  CHECK(copy.data() == c.data());
  CHECK(copy.size() == c.size());

  bytecast::chunk assigned;
  assigned = c;
  CHECK(assigned.data() == c.data());
  CHECK(assigned.size() == c.size());

  bytecast::chunk moved = std::move(assigned);
  CHECK(moved.data() == c.data());
  CHECK(moved.size() == c.size());
  CHECK(std::memcmp(moved.data(), payload.data(), payload.size()) == 0);
}

TEST_CASE("chunk: one write is shared by every reader, not copied per reader") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto a = w.stream();
  auto b = w.stream();
  auto c = w.stream();
  const auto payload = make_bytes(4096, 9);
  w.write(payload);

  const auto ca = take_chunk(ctx, a);
  const auto cb = take_chunk(ctx, b);
  CHECK(ca.data() == cb.data());

  // async_next hands out a view of the very same shared bytes.
  auto r = std::span<const std::byte>{};
  bytecast::error_code ec = not_called;
  c.async_next([&](bytecast::error_code e, std::span<const std::byte> got) {
    ec = e;
    r = got;
  });
  run_all(ctx);
  REQUIRE_FALSE(ec);
  CHECK(r.data() == ca.data());
  CHECK(r.size() == payload.size());
}

TEST_CASE("chunk: an owning chunk outlives its stream and its writer") {
  asio::io_context ctx;
  const auto payload = make_bytes(50000, 5);
  bytecast::chunk kept;
  {
    bytecast::byte_writer w(ctx);
    auto s = w.stream();
    w.write(payload);
    kept = take_chunk(ctx, s);
  }  // stream and writer destroyed here
  run_all(ctx);
  REQUIRE(kept.size() == payload.size());
  CHECK(std::memcmp(kept.data(), payload.data(), payload.size()) == 0);

  const bytecast::chunk copy = kept;
  kept = bytecast::chunk{};
  CHECK(kept.empty());
  REQUIRE(copy.size() == payload.size());
  CHECK(std::memcmp(copy.data(), payload.data(), payload.size()) == 0);
}

TEST_CASE("chunk: pooled block sizes round up by at most a quarter and map back to their own class") {
  using pool = bytecast::detail::block_pool;
  std::size_t classes_seen = 0, last_class = pool::not_pooled;
  // Every size up to 70000, then every 61st (a class there spans at least 16 KiB).
  for (std::size_t size = 1; size <= pool::max_size + 4096; size += size < 70000 ? 1 : 61) {
    std::size_t capacity = 0;
    const std::size_t c = pool::class_of(size, capacity);
#if defined(BYTECAST_NO_BLOCK_POOL)
    REQUIRE(c == pool::not_pooled);
    REQUIRE(capacity == size);
#else
    if (size < pool::min_size || size > pool::max_size) {
      REQUIRE(c == pool::not_pooled);
      REQUIRE(capacity == size);
      continue;
    }
    CAPTURE(size, capacity, c);
    REQUIRE(c != pool::not_pooled);
    REQUIRE(capacity >= size);
    REQUIRE(capacity - size <= size / 4);  // at most 25% slack
    std::size_t again = 0;
    REQUIRE(pool::class_of(capacity, again) == c);  // a block of the class's capacity is in the class
    REQUIRE(again == capacity);
    if (c != last_class) {
      REQUIRE((last_class == pool::not_pooled || c == last_class + 1));  // classes in order, none skipped
      last_class = c;
      ++classes_seen;
    }
#endif
  }
#if !defined(BYTECAST_NO_BLOCK_POOL)
  CHECK(classes_seen == 33);  // 4 KiB, then four per doubling up to 1 MiB
#endif
}

TEST_CASE("chunk: recycled large blocks carry exactly the new bytes, whatever size they had before") {
  // Sizes across a class (4097..5120 share one capacity) and at its edges, each written over
  // blocks that held other sizes and other bytes.
  const std::size_t sizes[] = {4096, 5120, 4097, 5000, 5121, 65536, 65535, 49153, 1 << 20, (1 << 20) - 1, 4095};
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < std::size(sizes); ++i) {
      const std::size_t n = sizes[i];
      std::vector<std::byte> data(n);
      for (std::size_t j = 0; j < n; ++j) data[j] = static_cast<std::byte>((j * 7 + i + round) % 251);
      std::vector<bytecast::chunk> copies;
      for (int k = 0; k < 3; ++k) copies.push_back(bytecast::chunk::copy_of(data));
      for (const auto& c : copies) {
        REQUIRE(c.size() == n);
        REQUIRE(std::memcmp(c.data(), data.data(), n) == 0);
      }
    }
  }
}

// A block's header is 8 bytes (so a 64-byte chunk fits malloc's 80-byte class); a payload of
// 4 GiB or more keeps its size in 8 bytes before the header. Only the first and last pages of
// those payloads are touched.
TEST_CASE("chunk: payloads of 4 GiB and more keep their exact size") {
  using bytecast::detail::chunk_access;
  using bytecast::detail::chunk_block;
  STATIC_REQUIRE(sizeof(chunk_block) == 8);
  if constexpr (sizeof(std::size_t) > 4) {
    const std::size_t limit = chunk_block::large_size;
    for (std::size_t size : {limit - 1, limit, limit + 1, (std::size_t{1} << 32) + 4096}) {
      CAPTURE(size);
      chunk_block* block = chunk_block::allocate(size);
      REQUIRE(block->size() == size);
      block->payload()[0] = std::byte{0x5a};
      block->payload()[size - 1] = std::byte{0xa5};
      bytecast::chunk c = chunk_access::adopt(block);
      CHECK(c.size() == size);
      CHECK(c.data() == block->payload());
      bytecast::chunk copy = c;  // a second reference; both release at the end of the scope
      CHECK(copy.size() == size);
      CHECK(copy.bytes().back() == std::byte{0xa5});
      bytecast::chunk tail = chunk_access::tail_of(block, size - 1);
      REQUIRE(tail.size() == 1);
      CHECK(tail.bytes()[0] == std::byte{0xa5});
      CHECK(c.bytes()[0] == std::byte{0x5a});
    }
  }
  chunk_block* small = chunk_block::allocate(64);
  CHECK(small->size() == 64);
  const bytecast::chunk c64 = chunk_access::adopt(small);
  CHECK(c64.size() == 64);
}
