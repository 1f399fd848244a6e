// bytecast_throughput: the workload of issue 7, one configuration per process, one JSON line.
//
// One writer thread (this program's main thread) writes `--total-bytes` bytes in chunks of
// `--chunk` bytes, as fast as it can; chunk i starts with the byte i % 251. `--readers`
// coroutines on one io_context run by `--threads` threads (2 by default) read every chunk,
// check its first byte and size, and count bytes. The clock runs from the first write until
// the last reader saw the end (bytecast's close sentinel, or a null pointer on a channel).
//
// --impl bytecast   one byte_writer, one byte_stream per reader
// --impl channel    what a user writes by hand: one asio::experimental::concurrent_channel per
//                   reader carrying shared_ptr<const vector<byte>>; the writer try_sends the same
//                   pointer to every channel (spinning with yield() while a channel is full: the
//                   capacity defaults to chunks + 1, so it never is unless --channel-capacity
//                   says otherwise; the retries are counted and printed)
// --impl ceiling    no writer: each reader loops `co_await asio::defer(ex, use_awaitable)` as many
//                   times as there are chunks: the executor's own floor for one resumption
// --impl memcpy     no readers: the writer's bandwidth copying T bytes in C-byte pieces from one
//                   source buffer into a pre-faulted ring (--memcpy-ring bytes), single-threaded
//
// --loop plain      co_await s.async_next(use_awaitable) (channel: async_receive) per chunk
// --loop next       bytecast only: `for (auto b = co_await s.next(); !b.empty(); b = co_await s.next())`
// --loop drain      try_next until would_block, then one async_next (channel: try_receive,
//                   then async_receive)
//
// Any mismatch (wrong first byte, wrong size, chunk or byte count) aborts with a message.
#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include <asio/co_spawn.hpp>
#include <asio/defer.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <asio/io_context.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
using asio::use_awaitable;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "bytecast_throughput: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

[[noreturn]] void usage(const char* what) {
  std::fprintf(stderr,
               "bytecast_throughput: %s\n"
               "usage: bytecast_throughput [--impl bytecast|channel|ceiling|memcpy] [--loop plain|drain|next]\n"
               "         [--chunk BYTES] [--readers N] [--total-bytes BYTES] [--threads N]\n"
               "         [--channel-capacity N] [--memcpy-ring BYTES] [--sample-bytes BYTES]\n"
               "  sizes take an optional binary suffix: K, M, G (64K = 65536)\n",
               what);
  std::exit(2);
}

std::uint64_t parse_size(std::string_view flag, std::string_view text) {
  std::uint64_t value = 0;
  std::size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) value = value * 10 + (text[i] - '0');
  if (i == 0) usage((std::string(flag) + ": not a number: " + std::string(text)).c_str());
  std::string_view suffix = text.substr(i);
  if (suffix == "" || suffix == "B") return value;
  if (suffix == "K" || suffix == "k" || suffix == "KiB") return value << 10;
  if (suffix == "M" || suffix == "m" || suffix == "MiB") return value << 20;
  if (suffix == "G" || suffix == "g" || suffix == "GiB") return value << 30;
  usage((std::string(flag) + ": unknown suffix: " + std::string(text)).c_str());
}

struct options {
  std::string impl = "bytecast";
  std::string loop = "plain";
  std::uint64_t chunk = 64;
  std::uint64_t readers = 1;
  std::uint64_t total_bytes = 64ull << 20;
  std::uint64_t threads = 2;
  std::uint64_t channel_capacity = 0; // 0: chunks + 1 (never full)
  std::uint64_t memcpy_ring = 64ull << 20;
  std::uint64_t sample_bytes = 64ull << 10; // how often the writer samples the readers' lag
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") usage("help");
    if (i + 1 >= argc) usage((std::string(flag) + " needs a value").c_str());
    std::string_view value = argv[++i];
    if (flag == "--impl")
      o.impl = value;
    else if (flag == "--loop")
      o.loop = value;
    else if (flag == "--chunk")
      o.chunk = parse_size(flag, value);
    else if (flag == "--readers")
      o.readers = parse_size(flag, value);
    else if (flag == "--total-bytes")
      o.total_bytes = parse_size(flag, value);
    else if (flag == "--threads")
      o.threads = parse_size(flag, value);
    else if (flag == "--channel-capacity")
      o.channel_capacity = parse_size(flag, value);
    else if (flag == "--memcpy-ring")
      o.memcpy_ring = parse_size(flag, value);
    else if (flag == "--sample-bytes")
      o.sample_bytes = parse_size(flag, value);
    else
      usage((std::string("unknown option ") + std::string(flag)).c_str());
  }
  if (o.impl != "bytecast" && o.impl != "channel" && o.impl != "ceiling" && o.impl != "memcpy")
    usage("--impl must be bytecast, channel, ceiling or memcpy");
  if (o.loop != "plain" && o.loop != "drain" && o.loop != "next") usage("--loop must be plain, drain or next");
  if (o.loop == "next" && o.impl != "bytecast") usage("--loop next is bytecast's");
  if (o.chunk == 0) usage("--chunk must be at least 1");
  if (o.total_bytes < o.chunk || o.total_bytes % o.chunk != 0)
    usage("--total-bytes must be a non-zero multiple of --chunk");
  if (o.impl != "memcpy" && o.readers == 0) usage("--readers must be at least 1");
  if (o.threads == 0) usage("--threads must be at least 1");
  return o;
}

// --- process measurements ----------------------------------------------------------------------

// A field of /proc/self/status in bytes (0 where /proc is missing).
std::uint64_t proc_status_bytes(const char* field) {
  std::ifstream status("/proc/self/status");
  const std::size_t len = std::strlen(field);
  std::string line;
  while (std::getline(status, line))
    if (line.compare(0, len, field) == 0) return std::strtoull(line.c_str() + len, nullptr, 10) * 1024;
  return 0;
}

// VmHWM, the peak resident set; getrusage's ru_maxrss where /proc is missing.
std::uint64_t peak_rss_bytes() {
  if (std::uint64_t hwm = proc_status_bytes("VmHWM:")) return hwm;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<std::uint64_t>(ru.ru_maxrss) * 1024; // KiB on Linux
}

std::uint64_t current_rss_bytes() { return proc_status_bytes("VmRSS:"); }

double load_average_1min() {
  std::ifstream f("/proc/loadavg");
  double load = -1;
  f >> load;
  return load;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

// --- shared run state ----------------------------------------------------------------------------

// One per reader, on its own cache line: the writer samples `chunks` now and then to know the
// backlog; only the reader stores to it.
struct alignas(64) reader_stats {
  std::atomic<std::uint64_t> chunks{0};
  std::uint64_t bytes = 0; // read by main after the io threads joined
};

struct run_state {
  explicit run_state(const options& o) : opt(o), stats(o.readers) {}
  const options& opt;
  std::vector<reader_stats> stats;
  std::atomic<std::uint64_t> ready{0};     // readers that reached their first wait
  std::atomic<std::uint64_t> remaining{0}; // readers that have not seen the end yet
  std::atomic<std::int64_t> end_ns{0};     // when the last reader saw the end
};

// What every reader does with one chunk: check, count, publish progress.
struct chunk_checker {
  std::uint64_t expected_size;
  std::uint64_t count = 0;
  std::uint64_t bytes = 0;
  unsigned mark = 0; // count % 251, kept without a division per chunk

  void check(const std::byte* data, std::size_t size, reader_stats& st) {
    if (size != expected_size) fail("a reader got a chunk of the wrong size");
    if (static_cast<unsigned>(data[0]) != mark) fail("a reader got a chunk with the wrong first byte (order or content)");
    if (++mark == 251) mark = 0;
    bytes += size;
    st.chunks.store(++count, std::memory_order_relaxed);
  }
};

void reader_done(run_state& rs, std::size_t index, const chunk_checker& c) {
  rs.stats[index].bytes = c.bytes;
  if (rs.remaining.fetch_sub(1, std::memory_order_acq_rel) == 1)
    rs.end_ns.store(now_ns(), std::memory_order_release);
}

void on_coroutine_exit(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    std::fprintf(stderr, "bytecast_throughput: a reader failed: %s\n", x.what());
  } catch (...) {
    std::fprintf(stderr, "bytecast_throughput: a reader failed\n");
  }
  std::fflush(stderr);
  std::abort();
}

// The writer's view of the readers' backlog, sampled every `every` chunks.
struct lag_sampler {
  const run_state& rs;
  std::uint64_t every;
  std::uint64_t countdown;
  std::uint64_t peak_max_lag = 0; // chunks: the most any single reader was behind
  std::uint64_t peak_sum_lag = 0; // queue entries: the sum over readers

  lag_sampler(const run_state& r, std::uint64_t e) : rs(r), every(e), countdown(e) {}

  void after_write(std::uint64_t written) {
    if (--countdown != 0) return;
    countdown = every;
    std::uint64_t max_lag = 0;
    std::uint64_t sum_lag = 0;
    for (const auto& st : rs.stats) {
      const std::uint64_t read = st.chunks.load(std::memory_order_relaxed);
      const std::uint64_t lag = written > read ? written - read : 0;
      max_lag = std::max(max_lag, lag);
      sum_lag += lag;
    }
    peak_max_lag = std::max(peak_max_lag, max_lag);
    peak_sum_lag = std::max(peak_sum_lag, sum_lag);
  }
};

struct result {
  double seconds = 0;
  double writer_seconds = 0;
  std::uint64_t delivered_bytes = 0;
  std::uint64_t delivered_chunks = 0;
  std::uint64_t peak_max_lag = 0;
  std::uint64_t peak_sum_lag = 0;
  std::uint64_t baseline_rss = 0;
  std::uint64_t send_retries = 0;
  bool has_writer = true;
  bool has_lag = true;
};

// Starts `threads` threads running `ioc`.
std::vector<std::thread> start_io(asio::io_context& ioc, std::uint64_t threads) {
  std::vector<std::thread> v;
  for (std::uint64_t i = 0; i < threads; ++i) v.emplace_back([&ioc] { ioc.run(); });
  return v;
}

void join(std::vector<std::thread>& v) {
  for (auto& t : v) t.join();
}

void wait_until_ready(const run_state& rs) {
  while (rs.ready.load(std::memory_order_acquire) < rs.opt.readers) std::this_thread::yield();
}

// Checks the readers' totals (this is also what keeps their work from being optimised away).
void collect(run_state& rs, std::uint64_t chunks, result& r) {
  for (const auto& st : rs.stats) {
    if (st.chunks.load(std::memory_order_relaxed) != chunks) fail("a reader saw the end before the last chunk");
    if (st.bytes != rs.opt.total_bytes) fail("a reader counted the wrong number of bytes");
    r.delivered_bytes += st.bytes;
    r.delivered_chunks += chunks;
  }
}

// --- bytecast ------------------------------------------------------------------------------------

asio::awaitable<void> bytecast_plain_reader(bytecast::byte_stream s, run_state& rs, std::size_t index) {
  chunk_checker c{rs.opt.chunk};
  reader_stats& st = rs.stats[index];
  rs.ready.fetch_add(1, std::memory_order_release);
  for (;;) {
    std::span<const std::byte> b = co_await s.async_next(use_awaitable);
    if (b.empty()) break; // close sentinel
    c.check(b.data(), b.size(), st);
  }
  reader_done(rs, index, c);
}

// The loop of API.md section 1.
asio::awaitable<void> bytecast_drain_reader(bytecast::byte_stream s, run_state& rs, std::size_t index) {
  chunk_checker c{rs.opt.chunk};
  reader_stats& st = rs.stats[index];
  rs.ready.fetch_add(1, std::memory_order_release);
  for (;;) {
    std::error_code ec;
    std::span<const std::byte> b = s.try_next(ec);
    if (ec == asio::error::would_block)
      b = co_await s.async_next(use_awaitable);
    else if (ec)
      fail(("try_next failed: " + ec.message()).c_str());
    if (b.empty()) break; // close sentinel
    c.check(b.data(), b.size(), st);
  }
  reader_done(rs, index, c);
}

// The loop of API.md section 8: next() returns a queued chunk without a trip through the executor.
asio::awaitable<void> bytecast_next_reader(bytecast::byte_stream s, run_state& rs, std::size_t index) {
  chunk_checker c{rs.opt.chunk};
  reader_stats& st = rs.stats[index];
  rs.ready.fetch_add(1, std::memory_order_release);
  for (auto b = co_await s.next(); !b.empty(); b = co_await s.next()) c.check(b.data(), b.size(), st);
  reader_done(rs, index, c);
}

result run_bytecast(run_state& rs) {
  const options& o = rs.opt;
  const std::uint64_t chunks = o.total_bytes / o.chunk;
  result r;
  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);
  bytecast::byte_writer writer(ioc);
  rs.remaining = o.readers;
  for (std::uint64_t i = 0; i < o.readers; ++i) {
    auto s = writer.stream();
    if (o.loop == "plain")
      asio::co_spawn(ioc, bytecast_plain_reader(std::move(s), rs, i), on_coroutine_exit);
    else if (o.loop == "next")
      asio::co_spawn(ioc, bytecast_next_reader(std::move(s), rs, i), on_coroutine_exit);
    else
      asio::co_spawn(ioc, bytecast_drain_reader(std::move(s), rs, i), on_coroutine_exit);
  }
  auto io = start_io(ioc, o.threads);
  wait_until_ready(rs);

  std::vector<std::byte> buf(o.chunk, std::byte{0x5a});
  lag_sampler lag(rs, std::max<std::uint64_t>(1, o.sample_bytes / o.chunk));
  r.baseline_rss = current_rss_bytes();
  const std::int64_t t0 = now_ns();
  unsigned mark = 0;
  for (std::uint64_t i = 0; i < chunks; ++i) {
    buf[0] = static_cast<std::byte>(mark);
    if (++mark == 251) mark = 0;
    writer.write(std::span<const std::byte>(buf));
    lag.after_write(i + 1);
  }
  writer.close();
  const std::int64_t t_writer = now_ns();

  work.reset();
  join(io);
  r.seconds = static_cast<double>(rs.end_ns.load() - t0) * 1e-9;
  r.writer_seconds = static_cast<double>(t_writer - t0) * 1e-9;
  r.peak_max_lag = lag.peak_max_lag;
  r.peak_sum_lag = lag.peak_sum_lag;
  if (writer.bytes_written() != o.total_bytes) fail("bytes_written() disagrees with what was written");
  collect(rs, chunks, r);
  return r;
}

// --- the hand-written alternative: one concurrent_channel per reader ---------------------------

using payload = std::shared_ptr<const std::vector<std::byte>>;
using channel = asio::experimental::concurrent_channel<void(std::error_code, payload)>;

asio::awaitable<void> channel_plain_reader(channel& ch, run_state& rs, std::size_t index) {
  chunk_checker c{rs.opt.chunk};
  reader_stats& st = rs.stats[index];
  rs.ready.fetch_add(1, std::memory_order_release);
  for (;;) {
    payload p = co_await ch.async_receive(use_awaitable);
    if (!p) break; // the writer's end marker
    c.check(p->data(), p->size(), st);
  }
  reader_done(rs, index, c);
}

asio::awaitable<void> channel_drain_reader(channel& ch, run_state& rs, std::size_t index) {
  chunk_checker c{rs.opt.chunk};
  reader_stats& st = rs.stats[index];
  rs.ready.fetch_add(1, std::memory_order_release);
  for (;;) {
    payload p;
    std::error_code ec;
    // try_receive runs the handler inline when a message is buffered.
    const bool got = ch.try_receive([&](std::error_code e, payload v) {
      ec = e;
      p = std::move(v);
    });
    if (!got)
      p = co_await ch.async_receive(use_awaitable);
    else if (ec)
      fail(("try_receive failed: " + ec.message()).c_str());
    if (!p) break;
    c.check(p->data(), p->size(), st);
  }
  reader_done(rs, index, c);
}

result run_channel(run_state& rs) {
  const options& o = rs.opt;
  const std::uint64_t chunks = o.total_bytes / o.chunk;
  const std::uint64_t capacity = o.channel_capacity != 0 ? o.channel_capacity : chunks + 1;
  result r;
  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);
  std::vector<std::unique_ptr<channel>> channels;
  rs.remaining = o.readers;
  for (std::uint64_t i = 0; i < o.readers; ++i) {
    channels.push_back(std::make_unique<channel>(ioc, capacity));
    if (o.loop == "plain")
      asio::co_spawn(ioc, channel_plain_reader(*channels.back(), rs, i), on_coroutine_exit);
    else
      asio::co_spawn(ioc, channel_drain_reader(*channels.back(), rs, i), on_coroutine_exit);
  }
  auto io = start_io(ioc, o.threads);
  wait_until_ready(rs);

  std::vector<std::byte> buf(o.chunk, std::byte{0x5a});
  lag_sampler lag(rs, std::max<std::uint64_t>(1, o.sample_bytes / o.chunk));
  std::uint64_t retries = 0;
  // A full channel: spin with yield() until its reader made room.
  auto send = [&](channel& ch, payload p) {
    while (!ch.try_send(std::error_code{}, p)) {
      ++retries;
      std::this_thread::yield();
    }
  };
  r.baseline_rss = current_rss_bytes();
  const std::int64_t t0 = now_ns();
  unsigned mark = 0;
  for (std::uint64_t i = 0; i < chunks; ++i) {
    buf[0] = static_cast<std::byte>(mark);
    if (++mark == 251) mark = 0;
    // One copy per write, shared by every reader, as bytecast does.
    auto p = std::make_shared<const std::vector<std::byte>>(buf.begin(), buf.end());
    for (std::size_t k = 0; k + 1 < channels.size(); ++k) send(*channels[k], p);
    send(*channels.back(), std::move(p));
    lag.after_write(i + 1);
  }
  for (auto& ch : channels) send(*ch, payload{});
  const std::int64_t t_writer = now_ns();

  work.reset();
  join(io);
  r.seconds = static_cast<double>(rs.end_ns.load() - t0) * 1e-9;
  r.writer_seconds = static_cast<double>(t_writer - t0) * 1e-9;
  r.peak_max_lag = lag.peak_max_lag;
  r.peak_sum_lag = lag.peak_sum_lag;
  r.send_retries = retries;
  collect(rs, chunks, r);
  return r;
}

// --- the executor ceiling ------------------------------------------------------------------------

asio::awaitable<void> ceiling_loop(std::uint64_t iterations, run_state& rs, std::size_t index) {
  auto ex = co_await asio::this_coro::executor;
  std::uint64_t n = 0;
  for (; n < iterations; ++n) co_await asio::defer(ex, use_awaitable);
  rs.stats[index].chunks.store(n, std::memory_order_relaxed);
  if (rs.remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) rs.end_ns.store(now_ns(), std::memory_order_release);
}

result run_ceiling(run_state& rs) {
  const options& o = rs.opt;
  const std::uint64_t chunks = o.total_bytes / o.chunk;
  result r;
  r.has_writer = false;
  r.has_lag = false;
  asio::io_context ioc;
  rs.remaining = o.readers;
  for (std::uint64_t i = 0; i < o.readers; ++i) asio::co_spawn(ioc, ceiling_loop(chunks, rs, i), on_coroutine_exit);
  r.baseline_rss = current_rss_bytes();
  const std::int64_t t0 = now_ns();
  auto io = start_io(ioc, o.threads);
  join(io);
  r.seconds = static_cast<double>(rs.end_ns.load() - t0) * 1e-9;
  for (const auto& st : rs.stats) {
    if (st.chunks.load() != chunks) fail("a ceiling loop stopped early");
    r.delivered_chunks += chunks;
  }
  return r;
}

// --- memcpy bandwidth ----------------------------------------------------------------------------

result run_memcpy(const options& o) {
  const std::uint64_t chunks = o.total_bytes / o.chunk;
  result r;
  r.has_lag = false;
  const std::uint64_t slots = std::max<std::uint64_t>(1, o.memcpy_ring / o.chunk);
  std::vector<std::byte> ring(slots * o.chunk, std::byte{0}); // written once: pre-faulted
  std::vector<std::byte> src(o.chunk, std::byte{0x5a});
  r.baseline_rss = current_rss_bytes();
  std::uint64_t check = 0;
  std::uint64_t expected = 0;
  std::uint64_t slot = 0;
  unsigned mark = 0;
  const std::int64_t t0 = now_ns();
  for (std::uint64_t i = 0; i < chunks; ++i) {
    src[0] = static_cast<std::byte>(mark);
    expected += mark;
    if (++mark == 251) mark = 0;
    std::byte* dst = ring.data() + slot * o.chunk;
    std::memcpy(dst, src.data(), o.chunk);
    // Tell the compiler the copy is observed, so it is neither elided nor merged.
    __asm__ __volatile__("" : : "r"(dst) : "memory");
    check += static_cast<unsigned>(dst[0]);
    if (++slot == slots) slot = 0;
  }
  const std::int64_t t1 = now_ns();
  if (check != expected) fail("memcpy check failed");
  r.seconds = static_cast<double>(t1 - t0) * 1e-9;
  r.writer_seconds = r.seconds;
  r.delivered_bytes = o.total_bytes;
  r.delivered_chunks = chunks;
  return r;
}

void print_json(const options& o, const result& r, double load) {
  const std::uint64_t chunks = o.total_bytes / o.chunk;
  const bool memcpy = o.impl == "memcpy";
  const bool ceiling = o.impl == "ceiling";
  const std::uint64_t peak_rss = peak_rss_bytes();
  std::printf("{\"impl\":\"%s\",\"loop\":\"%s\",\"chunk\":%" PRIu64 ",\"readers\":%" PRIu64 ",\"threads\":%" PRIu64
              ",\"total_bytes\":%" PRIu64 ",\"chunks\":%" PRIu64 ",\"seconds\":%.6f,\"chunks_per_s\":%.0f",
              o.impl.c_str(), memcpy || ceiling ? "-" : o.loop.c_str(), o.chunk, memcpy ? 0 : o.readers,
              memcpy ? 1 : o.threads, o.total_bytes, chunks, r.seconds,
              static_cast<double>(r.delivered_chunks) / r.seconds);
  if (ceiling)
    std::printf(",\"bytes_per_s\":null");
  else
    std::printf(",\"bytes_per_s\":%.0f", static_cast<double>(r.delivered_bytes) / r.seconds);
  if (r.has_writer)
    std::printf(",\"writer_seconds\":%.6f,\"writer_bytes_per_s\":%.0f", r.writer_seconds,
                static_cast<double>(o.total_bytes) / r.writer_seconds);
  else
    std::printf(",\"writer_seconds\":null,\"writer_bytes_per_s\":null");
  std::printf(",\"peak_rss_bytes\":%" PRIu64 ",\"baseline_rss_bytes\":%" PRIu64, peak_rss, r.baseline_rss);
  if (r.has_lag) {
    // Chunks are shared: the payload bytes alive are those of the most-behind reader.
    const std::uint64_t queued_bytes = r.peak_max_lag * o.chunk;
    const std::uint64_t growth = peak_rss > r.baseline_rss ? peak_rss - r.baseline_rss : 0;
    std::printf(",\"peak_queued_bytes\":%" PRIu64 ",\"peak_queued_chunks\":%" PRIu64
                ",\"peak_queue_entries\":%" PRIu64,
                queued_bytes, r.peak_max_lag, r.peak_sum_lag);
    // Below 1 MiB queued, allocator slack and RSS accounting noise swamp the ratio.
    if (queued_bytes >= (1u << 20))
      std::printf(",\"rss_growth_per_queued_byte\":%.3f,\"rss_overhead_per_queued_chunk\":%.1f",
                  static_cast<double>(growth) / static_cast<double>(queued_bytes),
                  (static_cast<double>(growth) - static_cast<double>(queued_bytes)) /
                      static_cast<double>(r.peak_max_lag));
    else
      std::printf(",\"rss_growth_per_queued_byte\":null,\"rss_overhead_per_queued_chunk\":null");
  } else {
    std::printf(",\"peak_queued_bytes\":null,\"peak_queued_chunks\":null,\"peak_queue_entries\":null"
                ",\"rss_growth_per_queued_byte\":null,\"rss_overhead_per_queued_chunk\":null");
  }
  if (o.impl == "channel")
    std::printf(",\"channel_capacity\":%" PRIu64 ",\"send_retries\":%" PRIu64,
                o.channel_capacity != 0 ? o.channel_capacity : chunks + 1, r.send_retries);
  std::printf(",\"load1\":%.2f}\n", load);
  std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  const double load = load_average_1min();
  result r;
  if (o.impl == "memcpy") {
    r = run_memcpy(o);
  } else {
    run_state rs(o);
    if (o.impl == "bytecast")
      r = run_bytecast(rs);
    else if (o.impl == "channel")
      r = run_channel(rs);
    else
      r = run_ceiling(rs);
  }
  print_json(o, r, load);
  return 0;
}
