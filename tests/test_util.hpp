// Shared helpers for the bytecast unit tests: every tests/*_test.cpp starts with this header
// (precompiled). It brings bytecast and the Asio backend, Catch2, small utilities, and at its end
// the read helpers (read_helpers.hpp) and the stream kinds for templated tests (kinds.hpp).
#pragma once

// bytecast, then Asio (standalone or Boost.Asio): the backend's headers and a global `asio`.
#include "backend.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <future>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <malloc.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BYTECAST_TEST_SANITIZED_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define BYTECAST_TEST_SANITIZED_ALLOCATOR 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define BYTECAST_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BYTECAST_TEST_TSAN 1
#endif
#endif

#ifdef BYTECAST_TEST_SANITIZED_ALLOCATOR
// Part of every sanitizer runtime (sanitizer/allocator_interface.h; gcc does not ship the header).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace Catch {
template <>
struct StringMaker<bytecast::error_code> {
  static std::string convert(const bytecast::error_code& ec) {
    return ec ? std::string(ec.category().name()) + ":" + std::to_string(ec.value()) + " (" + ec.message() + ")"
              : std::string("success");
  }
};
// What a read helper returns: an item, or nothing for the end of the stream.
template <class T>
struct StringMaker<std::optional<T>> {
  static std::string convert(const std::optional<T>& v) {
    return v ? ::Catch::Detail::stringify(*v) : std::string("nullopt");
  }
};
}  // namespace Catch

namespace bytecast_test {

using namespace std::chrono_literals;

// Token names that moved out of asio::experimental in Asio 1.24.
#if BYTECAST_ASIO_VERSION >= 102400
using asio::as_tuple;
using asio::deferred;
#else
using asio::experimental::as_tuple;
using asio::experimental::deferred;
#endif

// A value no real completion produces: results are seeded with it to detect inline completion.
inline const bytecast::error_code not_called = make_error_code(asio::error::no_protocol_option);

inline std::span<const std::byte> as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

inline std::string to_string(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

inline std::vector<std::byte> make_bytes(std::size_t n, unsigned seed = 0) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 131 + seed * 7 + (i >> 8)) & 0xff);
  return v;
}

// Rethrows an exception escaping a co_spawn'ed coroutine out of io_context::run(), so that a
// failed REQUIRE inside a coroutine (single-threaded tests only) is not silently swallowed.
struct rethrow {
  void operator()(std::exception_ptr e) const {
    if (e) std::rethrow_exception(e);
  }
  template <class T>
  void operator()(std::exception_ptr e, T&&) const {
    if (e) std::rethrow_exception(e);
  }
};

// Runs the context until it has no more work, but never longer than `timeout`; FAILS the test on timeout.
inline void run_all(asio::io_context& ctx, std::chrono::steady_clock::duration timeout = 60s) {
  ctx.restart();
  ctx.run_for(timeout);
  REQUIRE(ctx.stopped());
  ctx.restart();
}

// Runs handlers that are ready now (no waiting).
inline std::size_t poll(asio::io_context& ctx) {
  ctx.restart();
  auto n = ctx.poll();
  ctx.restart();
  return n;
}

// Runs a coroutine to completion on `ctx` (from the calling thread) and returns its result.
template <class T>
T run_coro(asio::io_context& ctx, asio::awaitable<T> a, std::chrono::steady_clock::duration timeout = 60s) {
  auto f = asio::co_spawn(ctx, std::move(a), asio::use_future);
  ctx.restart();
  ctx.run_for(timeout);
  ctx.restart();
  // A coroutine that never had to wait hands its result to use_future's promise through Asio's
  // system executor, on another thread: wait for it rather than expect it already there.
  REQUIRE(f.wait_for(30s) == std::future_status::ready);
  return f.get();
}

// Runs `ctx` on `n` threads until it runs out of work (or the deadline passes) and joins them.
// Returns true when the context ran out of work, false on timeout.
inline bool run_on_threads(asio::io_context& ctx, int n, std::chrono::steady_clock::duration timeout = 120s) {
  ctx.restart();
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back([&ctx, timeout] { ctx.run_for(timeout); });
  for (auto& t : threads) t.join();
  return ctx.stopped();
}

// Resident set size of this process in bytes (/proc/self/statm, second field).
inline std::size_t rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  REQUIRE(f != nullptr);
  unsigned long size = 0, resident = 0;
  int got = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  REQUIRE(got == 2);
  return static_cast<std::size_t>(resident) * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

// Bytes currently allocated by the heap (not yet freed): glibc's mallinfo2, or the sanitizer
// allocator's own count (ASan's quarantine and TSan's shadow would make RSS misleading there).
inline std::size_t allocated_bytes() {
#ifdef BYTECAST_TEST_SANITIZED_ALLOCATOR
  return __sanitizer_get_current_allocated_bytes();
#else
  struct mallinfo2 mi = ::mallinfo2();
  return mi.uordblks + mi.hblkhd;
#endif
}

// How much more RSS a touched byte may cost in this build (TSan keeps several shadow bytes per byte).
#ifdef BYTECAST_TEST_TSAN
inline constexpr std::size_t rss_per_byte = 6;
#else
inline constexpr std::size_t rss_per_byte = 1;
#endif

inline constexpr std::size_t MiB = std::size_t{1} << 20;

}  // namespace bytecast_test

// The read helpers and the stream kinds: in this header's precompiled form too.
#include "read_helpers.hpp"
#include "kinds.hpp"
