// bytecast_soak: creates and destroys many streams and writers while a thread writes, and checks
// that memory stays flat (issue 6, item 5).
//
//   bytecast_soak [--streams N] [--writers M] [--seed S]
//
// Defaults are the full soak: 1,000,000 streams and 100,000 writers, a few seconds in a release
// build (about 10 s under ThreadSanitizer), so CTest (label `soak`) runs it as is. The program
// prints the resident set size and the heap in use at the start (after a warm-up), in the middle
// and at the end, and fails when the end is not within a generous bound of the middle: anything
// that leaks per stream or per writer grows linearly between the two and shows up at once.
//
// What it churns, while one thread writes to the long-lived writers all the time:
//   - streams of long-lived byte writers (live and replay, unbounded and bounded drop_oldest /
//     disconnect / wait) and of a typed writer; some read with try_next, some destroyed with a
//     read pending (it completes with operation_aborted on the io_context thread), some destroyed
//     with a read already queued, some wrapped in a stalled_monitor,
//   - short-lived writers of every kind with a few streams and writes, destroyed before or after
//     their streams, some with a bounded async_write parked when they are destroyed.
#include "../backend.hpp" // bytecast, then the Asio backend's headers and a global `asio`

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <malloc.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define BYTECAST_SOAK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BYTECAST_SOAK_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define BYTECAST_SOAK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BYTECAST_SOAK_TSAN 1
#endif
#endif

#if defined(BYTECAST_SOAK_ASAN) || defined(BYTECAST_SOAK_TSAN)
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

#ifdef BYTECAST_SOAK_ASAN
// ASan keeps freed memory in a quarantine (256 MiB by default) before reusing it; that alone
// would make RSS grow between the middle and the end of a short run. A small quarantine keeps
// the RSS comparison meaningful. ASAN_OPTIONS from the environment still apply on top.
extern "C" const char* __asan_default_options() { return "quarantine_size_mb=16"; }
#endif

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

constexpr std::size_t MiB = std::size_t{1} << 20;

std::size_t rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int got = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return got == 2 ? static_cast<std::size_t>(resident) * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

// Heap bytes in use: the sanitizer allocator's count, or glibc's mallinfo2.
std::size_t heap_bytes() {
#if defined(BYTECAST_SOAK_ASAN) || defined(BYTECAST_SOAK_TSAN)
  return __sanitizer_get_current_allocated_bytes();
#else
  struct mallinfo2 mi = ::mallinfo2();
  return mi.uordblks + mi.hblkhd;
#endif
}

struct sample {
  const char* when;
  std::uint64_t streams, writers;
  std::size_t rss, heap;
  double seconds;
};

void print(const sample& s) {
  std::printf("soak: %-6s streams %9llu  writers %7llu  rss %8.1f MiB  heap %8.1f MiB  (%.1f s)\n", s.when,
              static_cast<unsigned long long>(s.streams), static_cast<unsigned long long>(s.writers),
              static_cast<double>(s.rss) / MiB, static_cast<double>(s.heap) / MiB, s.seconds);
  std::fflush(stdout);
}

bytecast::writer_options options(std::size_t limit, bytecast::overflow_policy p, std::size_t replay = 0) {
  bytecast::writer_options o;
  o.queue_limit = limit;
  o.on_overflow = p;
  o.replay_limit = replay;
  return o;
}

// Operations started by the churn thread and their completions on the io_context thread, by kind.
enum op_kind : int {
  live_next,
  dropping_next_chunk,
  cutting_read_some,
  typed_next,
  short_writer_next,
  parked_write,
  short_typed_next,
  op_kinds
};
const char* const op_names[op_kinds] = {"async_next on a stream of the live writer",
                                        "async_next_chunk on a stream of the drop_oldest writer",
                                        "async_read_some on a stream of the disconnect writer",
                                        "async_next on a stream of the typed writer",
                                        "async_next on a stream of a short-lived writer",
                                        "async_write_some parked on a short-lived bounded writer",
                                        "async_next on a stream of a short-lived typed writer"};

struct counters {
  std::atomic<std::uint64_t> started[op_kinds] = {}, completed[op_kinds] = {};
  std::atomic<std::uint64_t> aborted{0};
  std::uint64_t total_started() const {
    std::uint64_t n = 0;
    for (auto& c : started) n += c.load();
    return n;
  }
  std::uint64_t total_completed() const {
    std::uint64_t n = 0;
    for (auto& c : completed) n += c.load();
    return n;
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t total_streams = 1'000'000, total_writers = 100'000, seed = 1;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> std::uint64_t {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "soak: %s needs a value\n", argv[i]);
        std::exit(2);
      }
      return std::strtoull(argv[++i], nullptr, 10);
    };
    if (a == "--streams")
      total_streams = value();
    else if (a == "--writers")
      total_writers = value();
    else if (a == "--seed")
      seed = value();
    else {
      std::fprintf(stderr, "usage: %s [--streams N] [--writers M] [--seed S]\n", argv[0]);
      return 2;
    }
  }
  if (total_streams < 100) total_streams = 100;
  std::printf("soak: seed %llu, %llu streams, %llu writers\n", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(total_streams), static_cast<unsigned long long>(total_writers));

  asio::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  std::atomic<bool> io_done{false};
  std::thread io_thread([&] {
    ctx.run();
    io_done = true;
  });

  // The long-lived writers that the writer thread feeds all the time.
  bytecast::byte_writer live(ctx, options(0, bytecast::overflow_policy::wait, 4096));
  bytecast::byte_writer dropping(ctx, options(2048, bytecast::overflow_policy::drop_oldest, 1024));
  bytecast::byte_writer cutting(ctx, options(2048, bytecast::overflow_policy::disconnect));
  bytecast::byte_writer waiting(ctx, options(2048, bytecast::overflow_policy::wait));
  bytecast::typed_writer<std::string> typed(ctx, options(64, bytecast::overflow_policy::drop_oldest, 16));

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> writes{0};
  std::thread writer_thread([&] {
    std::mt19937_64 rng(seed * 7919 + 1);
    std::string payload(512, 'w');
    std::uint64_t n = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      const std::size_t size = 1 + rng() % 200;
      auto bytes = asio::buffer(payload.data(), size);
      live.write_some(bytes);
      dropping.write_some(bytes);
      cutting.write_some(bytes);
      bytecast::error_code ec;
      waiting.write_some(bytes, ec);  // would_block while a stream is full: fine
      typed.write(payload.substr(0, size % 40));
      ++n;
      writes.store(n, std::memory_order_relaxed);
      // The streams live briefly and are rarely read: pace the writer so that their backlogs
      // stay small; memory per stream is what is measured, not throughput.
      if (n % 16 == 0) std::this_thread::sleep_for(50us);
    }
  });

  counters reads;  // reads and the parked writes
  std::mt19937_64 rng(seed);
  const auto t0 = clock_type::now();
  auto seconds = [&] { return std::chrono::duration<double>(clock_type::now() - t0).count(); };

  // A handler that only counts. A read of a stream destroyed right after the read started
  // completes with operation_aborted, or normally when the io_context thread ran it before the
  // destruction; a parked write of a destroyed writer completes with broken_pipe. Each must
  // complete exactly once: the started and completed counts must meet.
  auto count_handler = [&reads](op_kind k) {
    reads.started[k].fetch_add(1, std::memory_order_relaxed);
    return [&reads, k](bytecast::error_code ec, auto&&...) {
      if (ec == asio::error::operation_aborted || ec == asio::error::broken_pipe)
        reads.aborted.fetch_add(1, std::memory_order_relaxed);
      else if (ec && ec != bytecast::error::lagged && ec != bytecast::error::overflowed && ec != asio::error::eof) {
        std::fprintf(stderr, "soak: %s completed with '%s'\n", op_names[k], ec.message().c_str());
        std::_Exit(1);
      }
      reads.completed[k].fetch_add(1, std::memory_order_relaxed);
    };
  };

  // One stream of a long-lived writer, used one of several ways, then destroyed.
  auto churn_stream = [&](std::uint64_t i) {
    const unsigned how = static_cast<unsigned>(rng() % 16);
    switch (i % 6) {
      case 0:
      case 1: {
        auto s = (how & 1) ? live.stream(bytecast::replay) : live.stream();
        if (how < 4) {
          s.async_next(count_handler(live_next));  // parked or queued when destroyed
        } else if (how < 8) {
          bytecast::error_code ec;
          for (int k = 0; k < 4; ++k) (void)s.try_next(ec);
        } else if (how < 9) {
          bytecast::stalled_monitor m{std::move(s)};
          (void)m;  // wrapped, never read: its strand and timer come and go
        }
        break;
      }
      case 2: {
        auto s = (how & 1) ? dropping.stream(bytecast::replay) : dropping.stream();
        if (how < 4) {
          s.async_next_chunk(count_handler(dropping_next_chunk));
        }
        break;
      }
      case 3: {
        auto s = cutting.stream();
        if (how < 4) {
          static char buf[64];
          s.async_read_some(asio::buffer(buf), count_handler(cutting_read_some));
        }
        break;
      }
      case 4: {
        auto s = waiting.stream();
        bytecast::error_code ec;
        if (how < 8) (void)s.try_next(ec);
        break;
      }
      case 5: {
        auto s = (how & 1) ? typed.stream(bytecast::replay) : typed.stream();
        if (how < 4) {
          s.async_next(count_handler(typed_next));
        } else if (how < 8) {
          bytecast::error_code ec;
          (void)s.try_next(ec);
        }
        break;
      }
    }
  };

  // A short-lived writer with a few streams and writes, destroyed in a random order.
  auto churn_writer = [&](std::uint64_t i) {
    const unsigned how = static_cast<unsigned>(rng() % 8);
    static const std::string data = "short-lived writer data";
    auto bytes = asio::buffer(data);
    switch (i % 4) {
      case 0: {
        auto w = std::make_optional<bytecast::byte_writer>(ctx, options(0, bytecast::overflow_policy::wait, how * 16));
        auto a = w->stream(), b = w->stream(bytecast::replay);
        w->write_some(bytes);
        a.async_next(count_handler(short_writer_next));
        if (how & 1) w.reset();  // the streams outlive their writer
        w.reset();
        break;
      }
      case 1: {
        // A bounded wait writer destroyed with an async_write parked: it completes with
        // broken_pipe (the destructor closes), on the io_context thread.
        bytecast::byte_writer w(ctx, options(8, bytecast::overflow_policy::wait));
        auto s = w.stream();
        w.write_some(bytes);
        w.async_write_some(bytes, count_handler(parked_write));
        break;
      }
      case 2: {
        bytecast::byte_writer w(
            ctx,
            options(16, how & 1 ? bytecast::overflow_policy::drop_oldest : bytecast::overflow_policy::disconnect, 32));
        std::optional<bytecast::byte_stream> s(w.stream());
        for (int k = 0; k < 3; ++k) w.write_some(bytes);
        bytecast::error_code ec;
        (void)s->try_next(ec);
        if (how & 2) s.reset();  // before the writer
        break;
      }
      case 3: {
        bytecast::typed_writer<std::string> w(ctx, options(0, bytecast::overflow_policy::wait, 4));
        auto s = w.stream();
        w.write(data);
        w.write(std::string(100, 'x'));
        if (how & 1) {
          s.async_next(count_handler(short_typed_next));
        }
        break;
      }
    }
  };

  // Keeps the io_context thread from falling far behind (the aborted reads queue up on it).
  auto throttle = [&] {
    while (reads.total_started() - reads.total_completed() > 4096) std::this_thread::sleep_for(100us);
  };

  // Operations that never completed: each must complete exactly once, so a count that stays
  // behind for many seconds is an operation lost inside the library.
  bool lost = false;
  auto settle = [&] {
    const auto deadline = clock_type::now() + 10s;
    while (reads.total_started() != reads.total_completed()) {
      if (clock_type::now() > deadline) {
        for (int k = 0; k < op_kinds; ++k) {
          const auto missing = reads.started[k].load() - reads.completed[k].load();
          if (missing != 0)
            std::printf("soak: FAILED: %llu of %llu '%s' never completed\n", static_cast<unsigned long long>(missing),
                        static_cast<unsigned long long>(reads.started[k].load()), op_names[k]);
          reads.completed[k].store(reads.started[k].load());  // report each loss once
        }
        std::fflush(stdout);
        lost = true;
        break;
      }
      std::this_thread::sleep_for(1ms);
    }
  };

  const std::uint64_t warmup = std::max<std::uint64_t>(total_streams / 100, 1000);
  const std::uint64_t writer_every = total_writers == 0 ? 0 : std::max<std::uint64_t>(total_streams / total_writers, 1);
  std::uint64_t streams_done = 0, writers_done = 0;
  std::vector<sample> samples;
  auto take = [&](const char* when) {
    // Let the io_context thread finish what the churn thread queued, so that the numbers are not
    // skewed by a backlog of queued completions.
    settle();
    ::malloc_trim(0);
    samples.push_back({when, streams_done, writers_done, rss_bytes(), heap_bytes(), seconds()});
    print(samples.back());
  };

  for (std::uint64_t i = 0; i < total_streams; ++i) {
    churn_stream(i);
    ++streams_done;
    if (writer_every != 0 && i % writer_every == 0 && writers_done < total_writers) {
      churn_writer(writers_done);
      ++writers_done;
    }
    if (i % 256 == 0) throttle();
    if (i + 1 == warmup) take("start");
    if (i + 1 == total_streams / 2) take("middle");
  }
  take("end");

  stop = true;
  writer_thread.join();
  live.close();
  dropping.close();
  cutting.close();
  waiting.close();
  typed.close();
  guard.reset();
  // run() returns once nothing is left. A read that was lost while still counting as
  // outstanding work would keep it running for ever: report that rather than hang.
  {
    const auto deadline = clock_type::now() + 30s;
    while (!io_done.load() && clock_type::now() < deadline) std::this_thread::sleep_for(1ms);
    if (!io_done.load()) {
      std::printf(
          "soak: FAILED: io_context::run() did not return once everything was destroyed (an operation "
          "still counts as outstanding work)\n");
      std::fflush(stdout);
      std::_Exit(1);
    }
  }
  io_thread.join();

  const sample& mid = samples[1];
  const sample& end = samples[2];
  std::printf("soak: %llu writes by the writer thread; %llu operations started, %llu completed (%llu aborted)\n",
              static_cast<unsigned long long>(writes.load()), static_cast<unsigned long long>(reads.total_started()),
              static_cast<unsigned long long>(reads.total_completed()),
              static_cast<unsigned long long>(reads.aborted.load()));
  bool ok = !lost;
  // Generous bounds: a quarter more than the middle plus 32 MiB of RSS, 8 MiB of heap. A leak of
  // even 16 bytes per stream is 8 MiB over the second half of the full run.
  const std::size_t rss_bound = mid.rss + std::max(mid.rss / 4, 32 * MiB);
  const std::size_t heap_bound = mid.heap + 8 * MiB;
  std::printf("soak: rss end %.1f MiB (bound %.1f MiB), heap end %.1f MiB (bound %.1f MiB)\n",
              static_cast<double>(end.rss) / MiB, static_cast<double>(rss_bound) / MiB,
              static_cast<double>(end.heap) / MiB, static_cast<double>(heap_bound) / MiB);
  if (end.rss > rss_bound) {
    std::printf("soak: FAILED: RSS grew from the middle to the end\n");
    ok = false;
  }
  if (end.heap > heap_bound) {
    std::printf("soak: FAILED: heap in use grew from the middle to the end\n");
    ok = false;
  }
  std::printf("soak: %s\n", ok ? "passed" : "FAILED");
  return ok ? 0 : 1;
}
