// Tests for bytecast::chunk (chunk.hpp).
#include "test_util.hpp"

#include <type_traits>

using namespace bytecast_test;

namespace {

// Takes the next chunk from a stream with async_next_chunk on a single-threaded context.
bytecast::chunk take_chunk(asio::io_context& ctx, bytecast::byte_stream& s) {
  bytecast::error_code ec = not_called;
  bytecast::chunk c;
  int calls = 0;
  s.async_next_chunk([&](bytecast::error_code e, bytecast::chunk got) {
    ++calls;
    ec = e;
    c = std::move(got);
  });
  run_all(ctx, 30s);
  REQUIRE(calls == 1);
  REQUIRE_FALSE(ec);
  return c;
}

}  // namespace

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
