// Writes are all-or-nothing: when an allocation inside a write fails, the exception
// propagates and no stream (nor the replay window) sees the write; writer and streams stay
// usable. A separate executable, because it replaces the global operator new to fail on
// demand (only on the thread that armed it, only while armed).
#if defined(__GNUC__) && !defined(__clang__)
// The replacements below pair operator new with malloc and operator delete with free, which
// gcc's heuristic reports as a mismatch wherever it inlines them.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include "../backend.hpp" // bytecast, then the Asio backend's headers and a global `asio`

#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <cstdlib>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace {

// Allocations left before the next one fails on this thread; negative: never fail.
thread_local long allocations_left = -1;

struct fail_after {
  explicit fail_after(long n) { allocations_left = n; }
  ~fail_after() { allocations_left = -1; }
  fail_after(const fail_after&) = delete;
  fail_after& operator=(const fail_after&) = delete;
};

} // namespace

void* operator new(std::size_t size) {
  if (allocations_left == 0) throw std::bad_alloc();
  if (allocations_left > 0) --allocations_left;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// The nothrow form too (Catch2 uses it), so that every operator delete here frees what malloc
// gave: otherwise AddressSanitizer reports a new/free mismatch at exit.
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  if (allocations_left == 0) return nullptr;
  if (allocations_left > 0) --allocations_left;
  return std::malloc(size == 0 ? 1 : size);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

std::string text(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

std::vector<std::string> drain(bytecast::byte_stream& s) {
  std::vector<std::string> out;
  for (;;) {
    bytecast::error_code ec;
    auto b = s.try_next(ec);
    if (ec == asio::error::would_block || ec || b.empty()) return out;
    out.push_back(text(b));
  }
}

template <class T>
std::vector<T> drain(bytecast::typed_stream<T>& s) {
  std::vector<T> out;
  for (;;) {
    bytecast::error_code ec;
    auto v = s.try_next(ec);
    if (ec || !v) return out;
    out.push_back(std::move(*v));
  }
}

// A value whose copies fail on demand (moves never do).
struct fragile {
  static inline int copies_left = -1;
  int value = 0;
  explicit fragile(int v) : value(v) {}
  static inline int poisoned = -1; // copies of this value always fail
  fragile(const fragile& other) : value(other.value) {
    if (copies_left == 0 || (poisoned >= 0 && other.value == poisoned)) throw std::runtime_error("copy failed");
    if (copies_left > 0) --copies_left;
  }
  fragile(fragile&&) noexcept = default;
  fragile& operator=(const fragile&) = default;
  fragile& operator=(fragile&&) noexcept = default;
  bool operator==(const fragile& o) const { return value == o.value; }
};

} // namespace

TEST_CASE("byte_writer: a write whose allocation fails reaches no stream and no replay window") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, bytecast::writer_options{.replay_limit = 1 << 20});
  std::vector<bytecast::byte_stream> streams;
  for (int i = 0; i < 3; ++i) streams.push_back(w.stream());

  // Each round fails the k-th allocation of one write, for every k until a write gets
  // through: whatever allocation fails (the chunk, a queue growing, the replay window
  // growing), the write is all-or-nothing.
  std::vector<std::string> accepted;
  int failures = 0;
  for (int round = 0; round < 200; ++round) {
    const std::string data = "write-" + std::to_string(round);
    for (long k = 0;; ++k) {
      bool threw = false;
      try {
        fail_after guard(k);
        w.write(data);
      } catch (const std::bad_alloc&) {
        threw = true;
        ++failures;
      }
      if (!threw) {
        accepted.push_back(data);
        break;
      }
      REQUIRE(k < 64); // some k lets the write through
    }
  }
  CHECK(failures >= 200); // every round failed at least once (k = 0: the chunk itself)
  CHECK(w.bytes_written() == [&] {
    std::size_t n = 0;
    for (auto& a : accepted) n += a.size();
    return n;
  }());
  for (auto& s : streams) CHECK(drain(s) == accepted);

  auto late = w.stream(bytecast::replay);
  CHECK(drain(late) == accepted); // the replay window saw each write exactly once too

  w.write("after"); // still usable
  for (auto& s : streams) CHECK(drain(s) == std::vector<std::string>{"after"});
}

TEST_CASE("typed_writer: a write whose value copy throws reaches no stream") {
  asio::io_context ctx;
  bytecast::typed_writer<fragile> w(ctx, bytecast::writer_options{.replay_limit = 100});
  auto a = w.stream();
  auto b = w.stream();
  auto c = w.stream();

  std::vector<fragile> accepted;
  for (int round = 0; round < 50; ++round) {
    for (int k = 0;; ++k) {
      bool threw = false;
      try {
        fragile::copies_left = k;
        w.write(fragile(round)); // copies for all streams but one, and none for the moved value
      } catch (const std::runtime_error&) {
        threw = true;
      }
      fragile::copies_left = -1;
      if (!threw) {
        accepted.emplace_back(round);
        break;
      }
      REQUIRE(k < 10);
    }
  }
  CHECK(drain(a) == accepted);
  CHECK(drain(b) == accepted);
  CHECK(drain(c) == accepted);
  auto late = w.stream(bytecast::replay);
  CHECK(drain(late) == accepted);
}

TEST_CASE("typed_writer: a value copy that throws in write(const T&) propagates and delivers nothing") {
  asio::io_context ctx;
  bytecast::typed_writer<fragile> w(ctx);
  auto a = w.stream();
  const fragile v(7);
  fragile::copies_left = 0;
  CHECK_THROWS_AS(w.write(v), std::runtime_error);
  fragile::copies_left = -1;
  bytecast::error_code ec;
  CHECK_FALSE(a.try_next(ec).has_value());
  CHECK(ec == asio::error::would_block);
  w.write(v);
  CHECK(drain(a) == std::vector<fragile>{v});
}

TEST_CASE("typed_writer: an async write whose value copy throws propagates from async_write, delivers nothing, "
          "and its handler is destroyed unrun") {
  asio::io_context ctx;
  bytecast::typed_writer<fragile> w(ctx);
  auto a = w.stream();
  auto b = w.stream();  // two streams: one copy is made
  auto token = std::make_shared<int>(0);
  int calls = 0;
  fragile::poisoned = 3;
  CHECK_THROWS_AS(w.async_write(fragile(3), [&calls, token](bytecast::error_code) { ++calls; }), std::runtime_error);
  fragile::poisoned = -1;
  CHECK(token.use_count() == 1);  // the operation and its handler are gone
  ctx.run();
  CHECK(calls == 0);
  CHECK(drain(a).empty());
  CHECK(drain(b).empty());
  w.write(fragile(4));  // still usable
  CHECK(drain(a) == std::vector<fragile>{fragile(4)});
  CHECK(drain(b) == std::vector<fragile>{fragile(4)});
}

TEST_CASE("typed_writer: a parked async write whose value copy throws completes with invalid_argument, delivered "
          "to nobody, and the writes behind it go on") {
  asio::io_context ctx;
  bytecast::typed_writer<fragile> w(ctx, bytecast::writer_options{.queue_limit = 1});  // wait policy
  auto a = w.stream();
  auto b = w.stream();
  w.write(fragile(0));  // both full
  std::optional<bytecast::error_code> first, second;
  fragile::poisoned = 1;
  w.async_write(fragile(1), [&](bytecast::error_code ec) { first = ec; });
  w.async_write(fragile(2), [&](bytecast::error_code ec) { second = ec; });
  ctx.poll();
  ctx.restart();
  CHECK_FALSE(first.has_value());  // both parked
  CHECK_FALSE(second.has_value());
  CHECK(drain(a) == std::vector<fragile>{fragile(0)});
  bytecast::error_code ec;
  auto v = b.try_next(ec);  // room in both: 1 is tried, its copy throws; 2 goes out at once
  CHECK_FALSE(ec);
  CHECK((v && *v == fragile(0)));
  ctx.poll();
  fragile::poisoned = -1;
  REQUIRE(first.has_value());
  CHECK(*first == asio::error::invalid_argument);
  REQUIRE(second.has_value());
  CHECK_FALSE(*second);
  CHECK(drain(a) == std::vector<fragile>{fragile(2)});
  CHECK(drain(b) == std::vector<fragile>{fragile(2)});
  CHECK(w.items_written() == 2);
}
