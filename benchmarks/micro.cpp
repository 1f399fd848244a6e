// bytecast_micro: Google Benchmark micro-benchmarks for the costs issue 7 names.
//
//   BM_write                 one write(), by number of streams and chunk size; the streams are
//                            drained with try_next between batches, outside the timed region
//   BM_alloc_copy            what one write must cost at least: operator new + memcpy + delete
//   BM_alloc_copy_held       the same with the copies kept alive in batches, like queued chunks
//   BM_channel_send          the hand-written alternative's write: make_shared<vector> + one
//                            try_send per concurrent_channel (drained the same way)
//   BM_try_next_ready        one try_next with chunks queued
//   BM_async_next_ready      one async_next with a chunk queued, coroutine (use_awaitable) or
//                            callback reader, single-threaded io_context
//   BM_defer_ceiling         one `co_await asio::defer(ex, use_awaitable)`: the executor's floor
//   BM_wake_same_thread      a parked reader: write one chunk, run the io_context until the
//                            reader took it and parked again (all on one thread)
//   BM_wake_cross_thread     the same with the reader on another thread: write, spin until the
//                            reader saw it (a latency, sensitive to load)
//
// The "ns_per_op" counters divide a batch's time by the operations in it.
#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include <asio/co_spawn.hpp>
#include <asio/defer.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <asio/io_context.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <system_error>
#include <thread>
#include <vector>

namespace {

using asio::use_awaitable;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "bytecast_micro: %s\n", what);
  std::abort();
}

// Reads and operations per timed batch in the round-trip benchmarks.
constexpr std::int64_t batch = 1024;

benchmark::Counter per_op(double ops_per_iteration) {
  return benchmark::Counter(ops_per_iteration, benchmark::Counter::kIsIterationInvariantRate |
                                                   benchmark::Counter::kInvert);
}

// Writes between two drains: about 16 MiB of chunks, at least 64, at most 4096.
std::int64_t writes_per_drain(std::int64_t chunk) {
  return std::clamp<std::int64_t>((16 << 20) / chunk, 64, 4096);
}

std::uint64_t drain(std::vector<bytecast::byte_stream>& streams) {
  std::uint64_t n = 0;
  for (auto& s : streams) {
    for (;;) {
      std::error_code ec;
      auto b = s.try_next(ec);
      if (ec) break;
      benchmark::DoNotOptimize(b.data());
      ++n;
    }
  }
  return n;
}

// --- write cost ----------------------------------------------------------------------------------

void BM_write(benchmark::State& state) {
  const auto streams = state.range(0);
  const auto chunk = state.range(1);
  asio::io_context ioc;
  bytecast::byte_writer w(ioc);
  std::vector<bytecast::byte_stream> ss;
  for (std::int64_t i = 0; i < streams; ++i) ss.push_back(w.stream());
  std::vector<std::byte> buf(static_cast<std::size_t>(chunk), std::byte{1});
  const std::int64_t per_drain = writes_per_drain(chunk);
  std::int64_t k = 0;
  std::uint64_t written = 0;
  std::uint64_t read = 0;
  for (auto _ : state) {
    w.write(std::span<const std::byte>(buf));
    ++written;
    if (++k == per_drain && streams != 0) {
      state.PauseTiming();
      read += drain(ss);
      state.ResumeTiming();
      k = 0;
    }
  }
  read += drain(ss);
  if (read != written * static_cast<std::uint64_t>(streams)) fail("BM_write: streams missed chunks");
  state.SetBytesProcessed(state.iterations() * chunk);
}
BENCHMARK(BM_write)
    ->ArgNames({"streams", "chunk"})
    ->ArgsProduct({{0, 1, 4, 16, 64, 256}, {64, 4096, 65536}});

void BM_alloc_copy(benchmark::State& state) {
  const auto chunk = static_cast<std::size_t>(state.range(0));
  std::vector<std::byte> buf(chunk, std::byte{1});
  for (auto _ : state) {
    void* p = ::operator new(chunk + 16);
    std::memcpy(static_cast<std::byte*>(p) + 16, buf.data(), chunk);
    benchmark::DoNotOptimize(p);
    benchmark::ClobberMemory();
    ::operator delete(p);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_alloc_copy)->ArgName("chunk")->Arg(64)->Arg(4096)->Arg(65536);

// The same, but the copies are kept until a batch is complete (as chunks stay queued until
// every stream read them): each allocation gets memory that is not in cache, and may have
// been handed back to the kernel (page faults) since the last batch.
void BM_alloc_copy_held(benchmark::State& state) {
  const auto chunk = static_cast<std::size_t>(state.range(0));
  std::vector<std::byte> buf(chunk, std::byte{1});
  const auto per_free = static_cast<std::size_t>(writes_per_drain(state.range(0)));
  std::vector<void*> held;
  held.reserve(per_free);
  auto release = [&] {
    for (void* p : held) ::operator delete(p);
    held.clear();
  };
  for (auto _ : state) {
    void* p = ::operator new(chunk + 16);
    std::memcpy(static_cast<std::byte*>(p) + 16, buf.data(), chunk);
    benchmark::DoNotOptimize(p);
    held.push_back(p);
    if (held.size() == per_free) {
      state.PauseTiming();
      release();
      state.ResumeTiming();
    }
  }
  release();
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_alloc_copy_held)->ArgName("chunk")->Arg(64)->Arg(4096)->Arg(65536);

using payload = std::shared_ptr<const std::vector<std::byte>>;
using channel = asio::experimental::concurrent_channel<void(std::error_code, payload)>;

void BM_channel_send(benchmark::State& state) {
  const auto streams = state.range(0);
  const auto chunk = state.range(1);
  asio::io_context ioc;
  std::vector<std::unique_ptr<channel>> chs;
  const std::int64_t per_drain = writes_per_drain(chunk);
  for (std::int64_t i = 0; i < streams; ++i)
    chs.push_back(std::make_unique<channel>(ioc, static_cast<std::size_t>(per_drain)));
  std::vector<std::byte> buf(static_cast<std::size_t>(chunk), std::byte{1});
  auto drain_channels = [&] {
    for (auto& ch : chs)
      while (ch->try_receive([](std::error_code, payload p) { benchmark::DoNotOptimize(p.get()); })) {
      }
  };
  std::int64_t k = 0;
  for (auto _ : state) {
    auto p = std::make_shared<const std::vector<std::byte>>(buf.begin(), buf.end());
    for (auto& ch : chs)
      if (!ch->try_send(std::error_code{}, p)) fail("BM_channel_send: a channel was full");
    if (++k == per_drain && streams != 0) {
      state.PauseTiming();
      drain_channels();
      state.ResumeTiming();
      k = 0;
    }
  }
  drain_channels();
  state.SetBytesProcessed(state.iterations() * chunk);
}
BENCHMARK(BM_channel_send)->ArgNames({"streams", "chunk"})->ArgsProduct({{0, 1, 4, 16, 64, 256}, {64, 65536}});

// --- reads with data ready -----------------------------------------------------------------------

void write_batch(bytecast::byte_writer& w, std::span<const std::byte> buf) {
  for (std::int64_t i = 0; i < batch; ++i) w.write(buf);
}

void BM_try_next_ready(benchmark::State& state) {
  asio::io_context ioc;
  bytecast::byte_writer w(ioc);
  auto s = w.stream();
  std::vector<std::byte> buf(64, std::byte{1});
  for (auto _ : state) {
    state.PauseTiming();
    write_batch(w, buf);
    state.ResumeTiming();
    for (std::int64_t i = 0; i < batch; ++i) {
      std::error_code ec;
      auto b = s.try_next(ec);
      if (ec || b.size() != buf.size()) fail("BM_try_next_ready: no chunk");
      benchmark::DoNotOptimize(b.data());
    }
  }
  state.counters["ns_per_op"] = per_op(batch);
}
BENCHMARK(BM_try_next_ready);

asio::awaitable<void> read_n(bytecast::byte_stream& s, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    auto b = co_await s.async_next(use_awaitable);
    if (b.empty()) fail("read_n: early end");
    benchmark::DoNotOptimize(b.data());
  }
}

void BM_async_next_ready_coroutine(benchmark::State& state) {
  asio::io_context ioc(1);
  bytecast::byte_writer w(ioc);
  auto s = w.stream();
  std::vector<std::byte> buf(64, std::byte{1});
  for (auto _ : state) {
    state.PauseTiming();
    write_batch(w, buf);
    state.ResumeTiming();
    asio::co_spawn(ioc, read_n(s, batch), asio::detached);
    ioc.run();
    ioc.restart();
  }
  state.counters["ns_per_op"] = per_op(batch);
}
BENCHMARK(BM_async_next_ready_coroutine);

// A callback reader: each completion starts the next read.
struct callback_reader {
  bytecast::byte_stream& s;
  std::int64_t left;
  void start() {
    s.async_next([this](std::error_code ec, std::span<const std::byte> b) {
      if (ec || b.empty()) fail("callback_reader: no chunk");
      benchmark::DoNotOptimize(b.data());
      if (--left != 0) start();
    });
  }
};

void BM_async_next_ready_callback(benchmark::State& state) {
  asio::io_context ioc(1);
  bytecast::byte_writer w(ioc);
  auto s = w.stream();
  std::vector<std::byte> buf(64, std::byte{1});
  for (auto _ : state) {
    state.PauseTiming();
    write_batch(w, buf);
    state.ResumeTiming();
    callback_reader r{s, batch};
    r.start();
    ioc.run();
    ioc.restart();
  }
  state.counters["ns_per_op"] = per_op(batch);
}
BENCHMARK(BM_async_next_ready_callback);

asio::awaitable<void> defer_n(std::int64_t n) {
  auto ex = co_await asio::this_coro::executor;
  for (std::int64_t i = 0; i < n; ++i) co_await asio::defer(ex, use_awaitable);
}

void BM_defer_ceiling(benchmark::State& state) {
  asio::io_context ioc(1);
  for (auto _ : state) {
    asio::co_spawn(ioc, defer_n(batch), asio::detached);
    ioc.run();
    ioc.restart();
  }
  state.counters["ns_per_op"] = per_op(batch);
}
BENCHMARK(BM_defer_ceiling);

// --- a waiting reader ----------------------------------------------------------------------------

asio::awaitable<void> count_until_end(bytecast::byte_stream& s, std::atomic<std::uint64_t>& seen) {
  for (;;) {
    auto b = co_await s.async_next(use_awaitable);
    if (b.empty()) co_return;
    benchmark::DoNotOptimize(b.data());
    seen.store(seen.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
}

void BM_wake_same_thread(benchmark::State& state) {
  asio::io_context ioc(1);
  bytecast::byte_writer w(ioc);
  auto s = w.stream();
  std::atomic<std::uint64_t> seen{0};
  asio::co_spawn(ioc, count_until_end(s, seen), asio::detached);
  ioc.poll(); // the reader parks in async_next
  std::vector<std::byte> buf(64, std::byte{1});
  std::uint64_t written = 0;
  for (auto _ : state) {
    w.write(std::span<const std::byte>(buf));
    ++written;
    ioc.poll(); // the reader takes the chunk and parks again
  }
  if (seen.load() != written) fail("BM_wake_same_thread: the reader missed chunks");
  w.close();
  ioc.run();
}
BENCHMARK(BM_wake_same_thread);

void BM_wake_cross_thread(benchmark::State& state) {
  asio::io_context ioc(1);
  bytecast::byte_writer w(ioc);
  auto s = w.stream();
  std::atomic<std::uint64_t> seen{0};
  asio::co_spawn(ioc, count_until_end(s, seen), asio::detached);
  std::thread io([&] { ioc.run(); });
  std::vector<std::byte> buf(64, std::byte{1});
  std::uint64_t written = 0;
  for (auto _ : state) {
    w.write(std::span<const std::byte>(buf));
    ++written;
    for (int spins = 0; seen.load(std::memory_order_acquire) != written;)
      if (++spins % 4096 == 0) std::this_thread::yield(); // 2 shared cores: let the reader run
  }
  w.close();
  io.join();
}
BENCHMARK(BM_wake_cross_thread)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
