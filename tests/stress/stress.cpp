// bytecast_stress: randomised concurrency stress of writers, streams and monitors (issue 6, item 1).
//
//   bytecast_stress [--seed N] [--seconds S] [--verbose]
//
// The run is a sequence of rounds. Each round draws its set-up from the seed: an io_context run
// by 2-4 threads; 1-3 writers (byte or typed; unbounded, wait, drop_oldest or disconnect; with or
// without replay), each fed by 1-2 producer threads that write with every write form (sync,
// error-code, buffer sequences, async, composed asio::write/async_write; bounded async writes
// sometimes cancelled); readers, each a coroutine on its own strand, that randomly read
// (async_next, async_next_chunk, async_read_some with random buffers, try_next), cancel (a
// cancellation slot fired by a timer, and `||` with a short timer), probe misuse (a second read
// while one is pending: already_started), sleep, drop their stream (also with a read pending:
// operation_aborted), or read through a stalled_monitor with a tiny timeout; readers that join
// late, with and without replay; writers that are closed (sometimes with a reason) or destroyed
// mid-run. Each reader's stream has its own options (API.md section 6): the writer's limit and
// policy, or its own limit, policy or both, so policies mix on one writer; some writers serve
// only drop_oldest, disconnect and unbounded streams. Producers sometimes wait for streams (or
// for none) before they write, cancelling the wait after a while.
//
// Section 7 (byte writers): some writers have a header that their first producer changes and
// clears while the other writes and streams are made; some write about one chunk in eight with
// sync_point (each tagged write form); some streams are aligned to sync points, and some resume
// from a position (at, inside or after a recent chunk, or older than the replay window); options
// stream() must refuse are probed. Each byte reader checks that a header comes first, whole, once,
// and is one set while its stream was made; that an aligned stream's first item and every item
// after a lagged read is a sync point, and that it skipped no sync point written after it was
// made; that a resumed stream starts with the tail of the resumed chunk, or with lagged and the
// oldest retained one; and that position() starts where the stream started, lies between that
// plus the bytes delivered and that plus dropped(), and ends at the end of what was written.
//
// Every chunk (and every typed value) carries its writer, producer and sequence number and a
// pattern that depends on them, so each reader checks what it got: whole, intact chunks; per
// producer strictly increasing sequence numbers (nothing duplicated or reordered); nothing lost
// except what the stream's policy allows: drop_oldest gaps add up to dropped() and come after a
// lagged read, disconnect gives a prefix and then overflowed, the others lose nothing; nothing
// written before a stream joined (unless replayed, within replay_limit); after everything, the
// sentinel, or the reason of a writer closed with one (never both). Every callback operation
// must complete exactly once and never inline; every async write and wait for streams too. A
// writer none of whose streams is a bounded wait one never fails a write with would_block, and
// never holds an async write back (a cancellation never aborts it).
//
// Decisions come from per-actor generators derived from the seed, so a seed replays the same
// decisions (the thread interleaving is the machine's). The seed is printed first; the program
// prints a summary and exits non-zero if anything failed, or if a round hangs (watchdog).
#include "../backend.hpp" // bytecast, then the Asio backend's headers and a global `asio`

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using steady = std::chrono::steady_clock;
#if BYTECAST_ASIO_VERSION >= 102400
using asio::as_tuple;
#else
using asio::experimental::as_tuple;
#endif

const auto tuple_awaitable = as_tuple(asio::use_awaitable);

// ---------------------------------------------------------------------------------------------
// Failures and statistics
// ---------------------------------------------------------------------------------------------

std::mutex failure_mutex;
std::vector<std::string> failures;  // guarded by failure_mutex

void record_failure(const char* buf) {
  std::lock_guard lock(failure_mutex);
  if (failures.size() < 50) std::fprintf(stderr, "stress: FAILURE: %s\n", buf);
  failures.emplace_back(buf);
}

[[gnu::format(printf, 1, 2)]] void fail(const char* fmt, ...) {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  record_failure(buf);
}

std::size_t failure_count() {
  std::lock_guard lock(failure_mutex);
  return failures.size();
}

struct statistics {
  std::atomic<std::uint64_t> rounds{0}, writes{0}, write_would_block{0}, write_cancelled{0}, empty_writes{0},
      items_read{0}, bytes_read{0}, lagged{0}, multi_lagged{0}, overflowed{0}, sentinels{0}, cancels{0},
      or_timer_won{0}, monitor_timeouts{0}, already_started{0}, dropped_streams{0}, dropped_pending{0},
      dropped_elsewhere{0}, churned{0}, late_joiners{0}, replay_streams{0}, monitors{0}, writers_closed_mid{0},
      writers_destroyed_mid{0}, callback_ops{0}, own_options{0}, reasons{0}, closed_with_reason{0}, stream_waits{0},
      stream_waits_met{0}, stream_waits_cancelled{0}, viewer_only_writes{0}, headers_set{0}, headers_read{0},
      sync_writes{0}, aligned_streams{0}, resumed_streams{0}, resumed_lagged{0}, invalid_options{0},
      position_checks{0};
};
statistics stats;

// ---------------------------------------------------------------------------------------------
// Self-describing content
// ---------------------------------------------------------------------------------------------

enum class policy { unbounded, wait, drop_oldest, disconnect };

const char* name(policy p) {
  switch (p) {
    case policy::unbounded:
      return "unbounded";
    case policy::wait:
      return "wait";
    case policy::drop_oldest:
      return "drop_oldest";
    case policy::disconnect:
      return "disconnect";
  }
  return "?";
}

policy to_policy(bytecast::overflow_policy p) {
  return p == bytecast::overflow_policy::drop_oldest  ? policy::drop_oldest
         : p == bytecast::overflow_policy::disconnect ? policy::disconnect
                                                      : policy::wait;
}

bytecast::overflow_policy to_overflow(policy p) {
  return p == policy::drop_oldest  ? bytecast::overflow_policy::drop_oldest
         : p == policy::disconnect ? bytecast::overflow_policy::disconnect
                                   : bytecast::overflow_policy::wait;
}

template <class T>
T pick(std::mt19937_64& rng, T lo, T hi) {  // inclusive
  return lo + static_cast<T>(rng() % static_cast<std::uint64_t>(hi - lo + 1));
}

std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A byte chunk: [magic u32][writer u32][producer u32][seq u32][length u32] + pattern.
constexpr std::size_t header_size = 20;
constexpr std::uint32_t magic = 0xb7ca5700u;

std::uint64_t content_hash(std::uint32_t w, std::uint32_t p, std::uint32_t seq) {
  return mix((std::uint64_t{w} << 40) ^ (std::uint64_t{p} << 32) ^ seq);
}

std::size_t byte_size(std::uint32_t w, std::uint32_t p, std::uint32_t seq) {
  const std::uint64_t h = content_hash(w, p, seq);
  if (h % 32 == 0) return header_size + 200 + (h >> 8) % 2800;  // now and then a big one
  return header_size + (h >> 8) % 180;
}

std::byte pattern_byte(std::uint32_t w, std::uint32_t p, std::uint32_t seq, std::size_t i) {
  return static_cast<std::byte>((w * 131u + p * 71u + seq * 31u + static_cast<std::uint32_t>(i) * 7u) & 0xffu);
}

void encode(std::vector<std::byte>& out, std::uint32_t w, std::uint32_t p, std::uint32_t seq) {
  const std::size_t len = byte_size(w, p, seq);
  out.resize(len);
  const std::uint32_t fields[5] = {magic, w, p, seq, static_cast<std::uint32_t>(len)};
  std::memcpy(out.data(), fields, sizeof fields);
  for (std::size_t i = header_size; i < len; ++i) out[i] = pattern_byte(w, p, seq, i);
}

// Length announced by a chunk header (0 if the magic is wrong).
std::size_t announced_length(std::span<const std::byte> b) {
  std::uint32_t fields[5];
  std::memcpy(fields, b.data(), sizeof fields);
  return fields[0] == magic ? fields[4] : 0;
}

bool decode(std::span<const std::byte> b, std::uint32_t& w, std::uint32_t& p, std::uint32_t& seq) {
  if (b.size() < header_size) return false;
  std::uint32_t fields[5];
  std::memcpy(fields, b.data(), sizeof fields);
  if (fields[0] != magic || fields[4] != b.size()) return false;
  w = fields[1];
  p = fields[2];
  seq = fields[3];
  if (byte_size(w, p, seq) != b.size()) return false;
  for (std::size_t i = header_size; i < b.size(); ++i)
    if (b[i] != pattern_byte(w, p, seq, i)) return false;
  return true;
}

// A typed value: the same identity, and a string that is heap-allocated for most values.
struct item {
  std::uint32_t writer = 0, producer = 0, seq = 0;
  std::string pad;
};

std::string item_pad(std::uint32_t w, std::uint32_t p, std::uint32_t seq) {
  const std::uint64_t h = content_hash(w, p, seq);
  std::string s(static_cast<std::size_t>(h % 48), ' ');
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>('a' + (h >> (i % 56)) % 26);
  return s;
}

item make_item(std::uint32_t w, std::uint32_t p, std::uint32_t seq) { return {w, p, seq, item_pad(w, p, seq)}; }

bool check_item(const item& v) { return v.pad == item_pad(v.writer, v.producer, v.seq); }

// Whether a byte writer with sync points writes chunk (w, p, seq) with bytecast::sync_point: about
// one in eight, so a reader can tell from the content alone.
bool is_sync(std::uint32_t w, std::uint32_t p, std::uint32_t seq) { return (content_hash(w, p, seq) >> 40) % 8 == 0; }

// A header (API.md section 7): the same frame with its own magic, [hmagic][writer][generation][0]
// [length] + pattern. No chunk tail can start with hmagic's bytes (00 48 ca b7): a pattern
// steps by 7 from byte to byte, and no header field of a chunk holds them.
constexpr std::uint32_t hmagic = 0xb7ca4800u;

// Header generations: the owner producer sets generation g (g = 1, 2, ...), or clears the header
// when g is a multiple of 4; generation 0 is the writer's start, with none.
bool generation_has_header(std::uint32_t g) { return g != 0 && g % 4 != 0; }

std::size_t header_length(std::uint32_t w, std::uint32_t g) { return header_size + (w * 53u + g * 37u) % 300; }

void encode_header(std::vector<std::byte>& out, std::uint32_t w, std::uint32_t g) {
  const std::size_t len = header_length(w, g);
  out.resize(len);
  const std::uint32_t fields[5] = {hmagic, w, g, 0, static_cast<std::uint32_t>(len)};
  std::memcpy(out.data(), fields, sizeof fields);
  for (std::size_t i = header_size; i < len; ++i) out[i] = pattern_byte(w, g, 0xffffffffu, i);
}

bool starts_with_hmagic(std::span<const std::byte> b) {
  std::uint32_t m = 0;
  if (b.size() < sizeof m) return false;
  std::memcpy(&m, b.data(), sizeof m);
  return m == hmagic;
}

bool decode_header(std::span<const std::byte> b, std::uint32_t& w, std::uint32_t& g) {
  if (b.size() < header_size || !starts_with_hmagic(b)) return false;
  std::uint32_t fields[5];
  std::memcpy(fields, b.data(), sizeof fields);
  w = fields[1];
  g = fields[2];
  std::vector<std::byte> expected;
  encode_header(expected, w, g);
  return fields[3] == 0 && std::ranges::equal(b, expected);
}

// ---------------------------------------------------------------------------------------------
// Round set-up: writers and their producers
// ---------------------------------------------------------------------------------------------

struct writer_config {
  bool typed = false;
  policy pol = policy::unbounded;  // the default of its streams
  std::size_t limit = 0;           // queue_limit (0 for unbounded)
  std::size_t replay = 0;          // replay_limit
  int producers = 1;
  bool destroy_mid_run = false;  // the owner producer destroys the writer at a random time
  bool close_mid_run = false;    // the controller closes it at a random time
  bool keep_to_end = false;      // kept (closed) until every reader finished, then checked
  bool viewers_only = false;     // no stream of it is a bounded wait one: nothing holds it back
  bytecast::error_code reason;   // what the controller closes it with (none: close())
  bool headers = false;          // byte writers: a header set, changed and cleared while it runs
  bool syncs = false;            // byte writers: some chunks written with sync_point

  // The limit of a stream made with `o`: its own, or the writer's (0: unbounded).
  [[nodiscard]] std::size_t limit_of(const bytecast::stream_options& o) const { return o.queue_limit.value_or(limit); }
  // Its policy: unbounded for a limit of 0 (whatever the policy), else its own or the writer's.
  [[nodiscard]] policy policy_of(const bytecast::stream_options& o) const {
    return limit_of(o) == 0 ? policy::unbounded : to_policy(o.on_overflow.value_or(to_overflow(pol)));
  }
  // Whether such a stream holds the writer back (bounded, wait).
  [[nodiscard]] bool holds_back(const bytecast::stream_options& o) const { return policy_of(o) == policy::wait; }
};

// A queue limit: items for typed writers, bytes for byte writers.
std::size_t random_limit(std::mt19937_64& rng, bool typed) {
  return typed ? pick<std::size_t>(rng, 1, 64) : std::size_t{64} << pick<int>(rng, 0, 7);  // 64 .. 8192 bytes
}

// A stream's options: the writer's limit and policy, or its own limit, policy or both (a limit of
// 0 now and then: unbounded whatever the policy). A viewers-only writer gets no bounded wait
// stream.
bytecast::stream_options random_stream_options(std::mt19937_64& rng, const writer_config& c, bool replay) {
  bytecast::stream_options o;
  o.replay = replay;
  const unsigned which = static_cast<unsigned>(rng() % 4);  // bit 0: a policy, bit 1: a limit
  if ((which & 1) != 0) o.on_overflow = to_overflow(static_cast<policy>(pick<int>(rng, 1, 3)));
  if ((which & 2) != 0) o.queue_limit = rng() % 5 == 0 ? 0 : random_limit(rng, c.typed);
  if (c.viewers_only && c.holds_back(o))
    o.on_overflow = rng() % 2 == 0 ? bytecast::overflow_policy::drop_oldest : bytecast::overflow_policy::disconnect;
  // Byte streams may start (and resume after a drop_oldest gap) only at sync points.
  o.align_to_sync_points = !c.typed && rng() % (c.syncs ? 3 : 12) == 0;
  return o;
}

// A stream of `w`, spelt stream() or stream(replay) when `o` leaves the limit, the policy and the
// section 7 options to the writer.
template <class Writer>
auto make_stream(Writer& w, const bytecast::stream_options& o) {
  if (!o.queue_limit && !o.on_overflow && !o.align_to_sync_points && !o.from_position)
    return o.replay ? w.stream(bytecast::replay) : w.stream();
  return w.stream(o);
}

// How a writer was first closed: the reason of the first close counts.
enum class first_close { open, clean, reason };

struct producer_state {
  std::atomic<std::uint32_t> next_seq{0};  // successful writes so far = next sequence number
  std::vector<std::uint64_t> prefix{0};    // prefix[k] = weight of seqs [0, k); producer thread only
};

struct reader_state;

struct writer_slot {
  std::uint32_t index = 0;
  writer_config cfg;
  bytecast::byte_writer* bw = nullptr;  // guarded by life (its existence)
  bytecast::typed_writer<item>* tw = nullptr;
  std::optional<bytecast::byte_writer> bw_storage;
  std::optional<bytecast::typed_writer<item>> tw_storage;
  std::mutex life;                  // held to create streams, close or destroy the writer
  std::atomic<bool> retire{false};  // producers stop (the writer is about to be destroyed)
  std::atomic<first_close> closed{first_close::open};  // how it was first closed; set with `life` held
  std::atomic<int> producers_running{0};
  std::vector<std::unique_ptr<producer_state>> producers;

  std::mutex readers_mutex;  // guards readers
  std::vector<std::shared_ptr<reader_state>> readers;

  // Header generations: the owner producer stores `header_started` before set_header or
  // clear_header and `header_done` after it, so a stream made between a load of `header_done` and
  // a load of `header_started` gets a generation in between.
  std::atomic<std::uint32_t> header_started{0}, header_done{0};

  // Sets header generation g (the owner producer, or the set-up before anyone runs).
  void set_header_generation(std::uint32_t g, std::vector<std::byte>& scratch, bool as_text) {
    header_started.store(g);
    if (!generation_has_header(g)) {
      bw->clear_header();
    } else {
      encode_header(scratch, index, g);
      if (as_text)
        bw->set_header(std::string_view(reinterpret_cast<const char*>(scratch.data()), scratch.size()));
      else
        bw->set_header(scratch);
    }
    header_done.store(g);
  }
  // Everything the producers wrote (after they stopped): where every stream that reached the end is.
  [[nodiscard]] std::uint64_t total_written() const {
    std::uint64_t sum = 0;
    for (std::uint32_t p = 0; p < producers.size(); ++p)
      sum += cfg.typed ? producers[p]->next_seq.load() : producers[p]->prefix.back();
    return sum;
  }

  [[nodiscard]] bool alive() const { return bw != nullptr || tw != nullptr; }
  // Whether chunk `seq` of producer p was written with sync_point.
  [[nodiscard]] bool sync(std::uint32_t p, std::uint64_t seq) const {
    return cfg.syncs && is_sync(index, p, static_cast<std::uint32_t>(seq));
  }
  // Whether any of the chunks [a, b) of producer p was a sync point.
  [[nodiscard]] bool any_sync(std::uint32_t p, std::uint64_t a, std::uint64_t b) const {
    for (std::uint64_t s = a; s < b; ++s)
      if (sync(p, s)) return true;
    return false;
  }
  [[nodiscard]] std::uint64_t weight(std::uint32_t p, std::uint32_t seq) const {
    return cfg.typed ? 1 : byte_size(index, p, seq);
  }
  // Weight of the sequence numbers [a, b) of producer p.
  [[nodiscard]] std::uint64_t weight_range(std::uint32_t p, std::uint64_t a, std::uint64_t b) const {
    std::uint64_t sum = 0;
    for (std::uint64_t s = a; s < b; ++s) sum += weight(p, static_cast<std::uint32_t>(s));
    return sum;
  }
  // Destroys the writer (with `life` held): a close() if it was open.
  void destroy_locked() {
    if (alive()) note_close(first_close::clean);
    bw = nullptr;
    tw = nullptr;
    bw_storage.reset();
    tw_storage.reset();
  }
  // Closes the writer with its configured reason, if any (with `life` held).
  void close_locked() {
    if (!alive()) return;
    note_close(cfg.reason ? first_close::reason : first_close::clean);
    if (bw != nullptr) cfg.reason ? bw->close(cfg.reason) : bw->close();
    if (tw != nullptr) cfg.reason ? tw->close(cfg.reason) : tw->close();
  }

 private:
  void note_close(first_close how) {
    if (closed.load() != first_close::open) return;  // only the first close counts
    closed.store(how);
    if (how == first_close::reason) stats.closed_with_reason.fetch_add(1, std::memory_order_relaxed);
  }
};

// ---------------------------------------------------------------------------------------------
// What one reader saw
// ---------------------------------------------------------------------------------------------

struct producer_view {
  std::int64_t first = -1, last = -1;
  std::uint64_t count = 0;
  std::uint64_t lo = 0, hi = 0;       // seqs < lo were written before the join, >= hi after
  std::uint64_t gap_weight = 0;       // weight skipped between two received items
  std::uint64_t replayed_weight = 0;  // weight of received items written before the join
  std::uint32_t lagged_before_first = 0;
};

enum class end_kind { running, sentinel, reason, overflowed, dropped, dropped_pending, failed };

const char* name(end_kind e) {
  switch (e) {
    case end_kind::running:
      return "running";
    case end_kind::sentinel:
      return "sentinel";
    case end_kind::reason:
      return "close reason";
    case end_kind::overflowed:
      return "overflowed";
    case end_kind::dropped:
      return "dropped";
    case end_kind::dropped_pending:
      return "dropped with a read pending";
    case end_kind::failed:
      return "failed";
  }
  return "?";
}

struct reader_state {
  // Set before the reader starts.
  int round = 0, id = 0;
  writer_slot* slot = nullptr;
  bool replay = false, monitor = false, late = false;
  bool own_options = false;        // its stream_options set a limit or a policy
  policy pol = policy::unbounded;  // its stream's, after the writer's defaults
  std::size_t limit = 0;           // 0 for unbounded
  std::uint64_t seed = 0;
  std::vector<producer_view> per;
  // Section 7 (byte streams).
  bool align = false;                          // align_to_sync_points
  bool resume = false;                         // from_position (single-producer writers)
  std::uint64_t from_pos = 0;
  std::uint32_t resume_seq = 0;                // the chunk that holds from_pos
  std::vector<std::byte> resume_prefix;        // its bytes before from_pos: they complete its tail
  std::uint64_t written_before = 0, written_after = 0;  // bytes_written() around the creation
  std::uint32_t header_lo = 0, header_hi = 0;  // the header generations around the creation

  // The reader's strand only, while it runs; read by the controller after the round.
  std::uint32_t lagged_since = 0;
  std::uint32_t lagged_at_end = 0;
  std::uint64_t lagged_total = 0;
  std::uint64_t lagged_repeats = 0;  // a lagged read right after another, with no item between
  end_kind end = end_kind::running;
  std::uint64_t dropped_at_end = 0;
  std::uint64_t initiated = 0, completed = 0;  // callback operations
  bool initiating = false;
  std::vector<std::byte> partial;  // bytes of a chunk read in parts (async_read_some)
  std::vector<std::byte> head;     // async_read_some bytes at the start: a header, or not yet known
  bool started = false;            // data (anything but the header) arrived
  std::int64_t header_seen = -1;   // the generation of the header it got
  std::uint64_t data_bytes = 0;    // bytes delivered, the header's excepted
  bool have_base = false;          // base: position() - dropped() before the first read
  std::uint64_t base = 0, last_position = 0;
  bool have_end_position = false;  // position() and dropped() after the end
  std::uint64_t end_position = 0, end_dropped = 0;
  std::uint64_t items = 0;
  const char* last_op = "none";
  const char* pending = "";  // what was planned for the callback operation in flight
  std::uint64_t errors = 0;

  // Read by the producers (backpressure for unbounded writers).
  std::atomic<std::size_t> backlog{0};
  std::atomic<bool> done{false};

  [[gnu::format(printf, 2, 3)]] void error(const char* fmt, ...) {
    ++errors;
    char buf[400];
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, args);
    va_end(args);
    fail("round %d reader %d (writer %u: %s; stream %s limit %zu%s%s%s%s%s%s): %s", round, id, slot->index,
         slot->cfg.typed ? "typed" : "bytes", name(pol), limit, own_options ? " (its own)" : "",
         replay ? ", replay" : "", align ? ", aligned" : "", resume ? ", resumed" : "", monitor ? ", monitor" : "",
         late ? ", late" : "", buf);
  }

  [[nodiscard]] bool single_producer() const { return per.size() == 1; }

  // One item (a whole chunk or a value) of producer p with sequence number seq.
  void on_item(std::uint32_t w, std::uint32_t p, std::uint32_t seq) {
    ++items;
    stats.items_read.fetch_add(1, std::memory_order_relaxed);
    if (w != slot->index || p >= per.size()) return error("item of writer %u producer %u: not ours", w, p);
    if (align && (items == 1 || lagged_since > 0) && !slot->sync(p, seq))
      error("producer %u seq %u is not a sync point, but the %s of an aligned stream", p, seq,
            items == 1 ? "first item" : "item after a lagged read");
    producer_view& v = per[p];
    if (v.first < 0) {
      v.first = seq;
      v.lagged_before_first = lagged_since;
      if (!replay && seq < v.lo)
        error("producer %u seq %u was written before the stream joined (first after: %" PRIu64 ")", p, seq, v.lo);
      if (!replay && pol == policy::drop_oldest && single_producer() && lagged_since > 0 && seq == v.lo)
        error("lagged before the first item, though nothing before it could have been dropped");
    } else {
      if (static_cast<std::int64_t>(seq) <= v.last)
        return error("producer %u seq %u after seq %" PRId64 ": duplicated or reordered", p, seq, v.last);
      const std::uint64_t gap = seq - static_cast<std::uint64_t>(v.last) - 1;
      if (gap != 0) {
        v.gap_weight += slot->weight_range(p, static_cast<std::uint64_t>(v.last) + 1, seq);
        if (pol != policy::drop_oldest)
          error("producer %u: %" PRIu64 " items lost before seq %u (policy %s loses nothing)", p, gap, seq,
                name(pol));
        else if (single_producer() && lagged_since == 0)
          error("producer %u: %" PRIu64 " items dropped before seq %u without a lagged read", p, gap, seq);
      } else if (single_producer() && lagged_since > 0) {
        error("producer %u seq %u: lagged reported but nothing was dropped", p, seq);
      }
    }
    if (seq < v.lo) v.replayed_weight += slot->weight(p, seq);
    v.last = seq;
    ++v.count;
    lagged_since = 0;
  }

  void on_lagged() {
    settle_head();
    stats.lagged.fetch_add(1, std::memory_order_relaxed);
    // A resume older than the replay window: the first read after the header, on any policy. It
    // goes on from the oldest retained chunk: the tail of the resumed one will not come.
    const bool resume_gap = resume && !started && lagged_total == 0;
    if (resume_gap) {
      stats.resumed_lagged.fetch_add(1, std::memory_order_relaxed);
      resume_prefix.clear();
    }
    if (pol != policy::drop_oldest && !resume_gap) error("lagged on a %s stream", name(pol));
    if (!partial.empty() || !head.empty())
      error("lagged in the middle of a chunk (%zu bytes of it read)", partial.size() + head.size());
    // The API: the next read completes once with lagged, "then continues with what it still
    // holds". A second lagged before any item breaks that (and can starve a reader for good).
    if (lagged_since > 0) {
      ++lagged_repeats;
      stats.multi_lagged.fetch_add(1, std::memory_order_relaxed);
    }
    ++lagged_since;
    ++lagged_total;
  }

  // A whole chunk from async_next / async_next_chunk / try_next / a monitor. A non-empty partial
  // means an async_read_some took the start of this chunk: the span must be exactly the rest.
  void on_chunk(std::span<const std::byte> b) {
    if (!started && !head.empty()) return on_bytes(b);  // the rest of what async_read_some began
    stats.bytes_read.fetch_add(b.size(), std::memory_order_relaxed);
    if (!started) {
      if (header_seen < 0 && starts_with_hmagic(b)) return on_header(b);
      start_data();
    }
    data_bytes += b.size();
    if (!partial.empty()) {
      partial.insert(partial.end(), b.begin(), b.end());
      if (partial.size() < header_size || announced_length(partial) != partial.size())
        return error("the rest of a partly read chunk does not complete it (%zu bytes)", partial.size());
      std::vector<std::byte> whole;
      whole.swap(partial);
      return on_whole_chunk(whole);
    }
    on_whole_chunk(b);
  }

  void on_whole_chunk(std::span<const std::byte> b) {
    std::uint32_t w = 0, p = 0, seq = 0;
    if (!decode(b, w, p, seq)) {
      std::uint32_t fields[5] = {};
      std::memcpy(fields, b.data(), std::min(b.size(), sizeof fields));
      return error("a torn or corrupt chunk of %zu bytes (%08x %u %u %u %u; %s)", b.size(), fields[0], fields[1],
                   fields[2], fields[3], fields[4], started ? "started" : "not started");
    }
    on_item(w, p, seq);
  }

  // The header: first, whole, once, one of the generations set while the stream was made.
  void on_header(std::span<const std::byte> b) {
    stats.headers_read.fetch_add(1, std::memory_order_relaxed);
    if (lagged_total != 0) error("the header after a lagged read");
    std::uint32_t w = 0, g = 0;
    if (!decode_header(b, w, g)) return error("a torn or corrupt header of %zu bytes", b.size());
    if (w != slot->index) return error("the header of writer %u", w);
    header_seen = g;
    if (g < header_lo || g > header_hi || !generation_has_header(g))
      error("header generation %u, though the stream was made while generations %u..%u were set", g, header_lo,
            header_hi);
  }

  // The first data: a resumed stream's first chunk is the tail of the resumed one.
  void start_data() {
    started = true;
    if (!resume_prefix.empty()) partial = std::move(resume_prefix);
    resume_prefix.clear();
  }

  // Bytes from async_read_some: a header first (told apart by its magic once 4 bytes are there),
  // then a byte stream whose chunks are reassembled from their headers.
  void on_bytes(std::span<const std::byte> b) {
    stats.bytes_read.fetch_add(b.size(), std::memory_order_relaxed);
    if (started) return on_data_bytes(b);
    head.insert(head.end(), b.begin(), b.end());
    if (header_seen < 0) {
      if (head.size() < sizeof hmagic) return;
      if (starts_with_hmagic(head)) {
        if (head.size() < header_size) return;
        std::uint32_t len = 0;
        std::memcpy(&len, head.data() + 16, sizeof len);
        if (len < header_size || len > 4096) {
          head.clear();
          return error("a header announcing %u bytes", len);
        }
        if (head.size() < len) return;
        on_header(std::span(head).first(len));
        head.erase(head.begin(), head.begin() + static_cast<std::ptrdiff_t>(len));
        if (head.empty()) return;
      }
    }
    settle_head();
  }

  // What `head` holds is data: after the header, or when it is not one. Also before a lagged read
  // or the end, when it holds fewer than 4 bytes (a resumed chunk's short tail): a header is whole
  // before either, so they cannot be one.
  void settle_head() {
    if (started || head.empty()) return;
    start_data();
    std::vector<std::byte> rest;
    rest.swap(head);
    on_data_bytes(rest);
  }

  void on_data_bytes(std::span<const std::byte> b) {
    data_bytes += b.size();
    partial.insert(partial.end(), b.begin(), b.end());
    while (partial.size() >= header_size) {
      const std::size_t len = announced_length(partial);
      if (len < header_size) {
        partial.clear();
        return error("async_read_some bytes do not start with a chunk header");
      }
      if (partial.size() < len) return;
      std::uint32_t w = 0, p = 0, seq = 0;
      if (!decode(std::span(partial).first(len), w, p, seq)) {
        partial.clear();
        return error("a torn or corrupt chunk of %zu bytes from async_read_some", len);
      }
      partial.erase(partial.begin(), partial.begin() + static_cast<std::ptrdiff_t>(len));
      on_item(w, p, seq);
    }
  }

  void on_value(const item& v) {
    if (!check_item(v)) return error("a corrupt value (seq %u)", v.seq);
    on_item(v.writer, v.producer, v.seq);
  }

  // The sentinel, or the writer's close reason: after everything written before the close.
  void on_end(end_kind how, std::uint64_t dropped) {
    settle_head();
    (how == end_kind::sentinel ? stats.sentinels : stats.reasons).fetch_add(1, std::memory_order_relaxed);
    if (!partial.empty() || !head.empty())
      error("the %s in the middle of a chunk (%zu bytes of it read)", name(how), partial.size() + head.size());
    lagged_at_end = lagged_since;
    dropped_at_end = dropped;
    end = how;
  }

  // Whether `ec` is the reason the writer was closed with.
  [[nodiscard]] bool is_reason(bytecast::error_code ec) const { return slot->cfg.reason && ec == slot->cfg.reason; }

  // What every read completes with once the stream ended (eof after the sentinel).
  [[nodiscard]] bytecast::error_code after_end() const {
    if (end == end_kind::overflowed) return bytecast::error::overflowed;
    if (end == end_kind::reason) return slot->cfg.reason;
    return asio::error::eof;
  }

  void on_overflowed(std::uint64_t dropped) {
    settle_head();
    stats.overflowed.fetch_add(1, std::memory_order_relaxed);
    if (pol != policy::disconnect) error("overflowed on a %s stream", name(pol));
    if (!partial.empty() || !head.empty())
      error("overflowed in the middle of a chunk (%zu bytes of it read)", partial.size() + head.size());
    dropped_at_end = dropped;
    end = end_kind::overflowed;
  }
};

// Publishes the reader's backlog for the producers' backpressure.
template <class Stream>
void publish_backlog(reader_state& rs, const Stream& s) {
  if constexpr (requires { s.queued_chunks(); })
    rs.backlog.store(s.queued_chunks(), std::memory_order_relaxed);
  else
    rs.backlog.store(s.queued_items(), std::memory_order_relaxed);
}

// Section 7's positions, from the reader's strand between reads. Before the first read the
// stream's base, position() - dropped(), is exact (nothing is read ahead): the resume position,
// bytes_written() as of the creation for a live stream, or the start of what a replay got. After
// that, position() lies between base plus the data delivered and that plus dropped() (drops of
// chunks after a batch read ahead count in dropped() before position() passes them), and never
// goes back. While the first bytes of async_read_some are not yet known to be header or data,
// there is nothing to check.
void check_position(reader_state& rs, const bytecast::byte_stream& s) {
  if (!rs.started && !rs.head.empty()) return;
  stats.position_checks.fetch_add(1, std::memory_order_relaxed);
  if (!rs.have_base) {
    for (int attempt = 0; attempt < 100 && !rs.have_base; ++attempt) {
      const std::uint64_t d1 = s.dropped();
      const std::uint64_t pos = s.position();
      if (s.dropped() != d1) continue;  // a drop in between: again
      rs.have_base = true;
      rs.base = pos - d1;
      rs.last_position = pos;
    }
    if (!rs.have_base) return;
    if (rs.resume && rs.base != rs.from_pos)
      rs.error("resumed at %" PRIu64 ", but position() - dropped() is %" PRIu64, rs.from_pos, rs.base);
    const std::uint64_t earliest =
        rs.replay && !rs.resume ? rs.written_before - std::min<std::uint64_t>(rs.written_before, rs.slot->cfg.replay)
                                : rs.written_before;
    if (!rs.resume && (rs.base < earliest || rs.base > rs.written_after))
      rs.error("starts at %" PRIu64 ", outside [%" PRIu64 ", %" PRIu64 "] (bytes_written() around its creation%s)",
               rs.base, earliest, rs.written_after, rs.replay ? ", less the replay limit" : "");
    return;
  }
  const std::uint64_t pos = s.position();
  const std::uint64_t dropped = s.dropped();  // after: it only grows
  const std::uint64_t low = rs.base + rs.data_bytes;
  if (pos < low || pos > low + dropped)
    rs.error("position() %" PRIu64 " outside [%" PRIu64 ", %" PRIu64 "]: base %" PRIu64 ", %" PRIu64
             " bytes delivered, dropped() %" PRIu64,
             pos, low, low + dropped, rs.base, rs.data_bytes, dropped);
  if (pos < rs.last_position) rs.error("position() went back from %" PRIu64 " to %" PRIu64, rs.last_position, pos);
  rs.last_position = pos;
}

// After the end: position() and dropped() no longer change.
void record_end_position(reader_state& rs, const bytecast::byte_stream& s) {
  rs.have_end_position = true;
  rs.end_position = s.position();
  rs.end_dropped = s.dropped();
}

// ---------------------------------------------------------------------------------------------
// Callback operations awaited from a coroutine, counted
// ---------------------------------------------------------------------------------------------

// Starts an operation with a plain callback (bound to the reader's strand, optionally to a
// cancellation slot) and awaits its arguments. The callback checks that it runs once, and not
// inside the initiating call.
//
// The initiation captures only plain pointers (the round keeps every reader_state alive until its
// io_context is gone; the strand lives in the reader's frame): with g++ 12, an initiation object
// that owns a shared_ptr or a strand executor, handed to async_initiate with use_awaitable inside
// a co_await expression, is destroyed once too often (the reference counts go wrong and the
// reader state or the strand is freed under the reader's feet). clang is not affected.
template <class Result, class Start>
asio::awaitable<Result> callback_op(reader_state* rs, const asio::any_io_executor& strand, Start start) {
  const asio::any_io_executor* ex = &strand;
  Start* starter = &start;
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(Result)>(
      [rs, ex, starter](auto handler) {
        ++rs->initiated;
        stats.callback_ops.fetch_add(1, std::memory_order_relaxed);
        rs->initiating = true;
        (*starter)(asio::bind_executor(
            *ex, [rs, once = std::make_unique<int>(0), handler = std::move(handler)](auto&&... args) mutable {
              if (rs->initiating) rs->error("%s completed inside its initiating call", rs->last_op);
              if (++*once != 1) return rs->error("%s completed twice", rs->last_op);
              ++rs->completed;
              rs->pending = "";
              std::move(handler)(Result{std::forward<decltype(args)>(args)...});
            }));
        rs->initiating = false;
      },
      asio::use_awaitable);
}

// What a reader coroutine shares with the timers that cancel its operation or destroy its stream.
template <class Stream>
struct reader_local {
  explicit reader_local(asio::any_io_executor s) : strand(s), timer(s) {}
  asio::any_io_executor strand;  // the reader's strand
  asio::steady_timer timer;
  asio::cancellation_signal signal;
  std::optional<Stream> stream;
  bool destroyed_elsewhere = false;
  std::uint64_t generation = 0;  // of the pending callback operation
  bool pending = false;
  bool destroyed_while_pending = false;
  bool cancel_emitted = false;
};

// Plans what happens to the next callback operation while it is pending: nothing, a
// cancellation through the slot after a short delay, the stream's destruction on the reader's
// strand after a short delay, or its destruction right away on another io_context thread (racing
// the operation, which may complete either way, but must complete).
enum class pending_plan { none, cancel, destroy, destroy_elsewhere };

const char* name(pending_plan p) {
  switch (p) {
    case pending_plan::none:
      return "nothing planned";
    case pending_plan::cancel:
      return "a slot cancellation planned";
    case pending_plan::destroy:
      return "the stream's destruction on its strand planned";
    case pending_plan::destroy_elsewhere:
      return "the stream destroyed on another thread";
  }
  return "?";
}

template <class Stream>
void arm(const std::shared_ptr<reader_local<Stream>>& l, pending_plan plan, std::chrono::microseconds delay,
         asio::cancellation_type type) {
  const std::uint64_t gen = ++l->generation;
  l->pending = true;
  l->cancel_emitted = false;
  l->destroyed_while_pending = false;
  if (plan == pending_plan::none || plan == pending_plan::destroy_elsewhere) return;
  l->timer.expires_after(delay);
  l->timer.async_wait([l, gen, plan, type](bytecast::error_code ec) {
    if (ec || !l->pending || l->generation != gen) return;
    if (plan == pending_plan::cancel) {
      l->cancel_emitted = true;
      stats.cancels.fetch_add(1, std::memory_order_relaxed);
      l->signal.emit(type);
    } else {
      l->destroyed_while_pending = true;
      l->stream.reset();
    }
  });
}

// Moves the stream out and destroys it on a thread of the io_context other than the reader's
// strand (the stream's own executor is the plain io_context one), while its read is pending.
template <class Stream>
void destroy_elsewhere(const std::shared_ptr<reader_local<Stream>>& l) {
  auto holder = std::make_shared<std::optional<Stream>>(std::move(l->stream));
  l->stream.reset();
  l->destroyed_elsewhere = true;
  stats.dropped_elsewhere.fetch_add(1, std::memory_order_relaxed);
  auto ex = (*holder)->get_executor();
  asio::post(ex, [holder] { holder->reset(); });
}

template <class Stream>
void disarm(const std::shared_ptr<reader_local<Stream>>& l) {
  l->pending = false;
  l->timer.cancel();
}

asio::cancellation_type random_cancellation_type(std::mt19937_64& rng) {
  switch (rng() % 3) {
    case 0:
      return asio::cancellation_type::terminal;
    case 1:
      return asio::cancellation_type::partial;
    default:
      return asio::cancellation_type::total;
  }
}

// How a read ended, for the reader loops.
enum class step { more, finished, stop };

// ---------------------------------------------------------------------------------------------
// Byte readers
// ---------------------------------------------------------------------------------------------

struct span_result {
  bytecast::error_code ec;
  std::span<const std::byte> b;
};
struct chunk_result {
  bytecast::error_code ec;
  bytecast::chunk c;
};
struct size_result {
  bytecast::error_code ec;
  std::size_t n = 0;
};

// Handles the result of a whole-chunk read (async_next, async_next_chunk, try_next).
step on_next_result(reader_state& rs, bytecast::error_code ec, std::span<const std::byte> b, std::uint64_t dropped,
                    bool abort_allowed) {
  if (!ec) {
    if (b.empty()) {
      rs.on_end(end_kind::sentinel, dropped);
      return step::finished;
    }
    rs.on_chunk(b);
    return step::more;
  }
  if (ec == bytecast::error::lagged) {
    rs.on_lagged();
    return step::more;
  }
  if (ec == bytecast::error::overflowed) {
    rs.on_overflowed(dropped);
    return step::finished;
  }
  if (rs.is_reason(ec)) {
    rs.on_end(end_kind::reason, dropped);
    return step::finished;
  }
  if (ec == asio::error::operation_aborted && abort_allowed) return step::more;
  rs.error("%s: unexpected '%s'", rs.last_op, ec.message().c_str());
  rs.end = end_kind::failed;
  return step::stop;
}

step on_read_some_result(reader_state& rs, bytecast::error_code ec, std::span<const std::byte> data, std::size_t requested,
                         std::uint64_t dropped, bool abort_allowed) {
  if (!ec) {
    if (data.empty() && requested != 0) {
      rs.error("async_read_some completed with 0 bytes and no error");
      rs.end = end_kind::failed;
      return step::stop;
    }
    if (data.size() > requested) rs.error("async_read_some copied %zu bytes into %zu", data.size(), requested);
    rs.on_bytes(data);
    return step::more;
  }
  if (ec == asio::error::eof) {  // the sentinel, for async_read_some
    rs.on_end(end_kind::sentinel, dropped);
    return step::finished;
  }
  return on_next_result(rs, ec, {}, dropped, abort_allowed);
}

asio::awaitable<void> byte_reader(std::shared_ptr<reader_state> rs, bytecast::byte_stream stream) {
  auto strand = co_await asio::this_coro::executor;
  auto l = std::make_shared<reader_local<bytecast::byte_stream>>(strand);
  l->stream.emplace(std::move(stream));
  std::mt19937_64 rng(rs->seed);
  asio::steady_timer sleeper(strand);
  std::vector<std::byte> buf_a(4096), buf_b(4096);
  // Each reader has its own taste: how often it sleeps, cancels, probes.
  const unsigned sleep_odds = pick<unsigned>(rng, 2, 40);
  const unsigned drop_odds = pick<unsigned>(rng, 300, 5000);

  step st = step::more;
  while (st == step::more) {
    publish_backlog(*rs, *l->stream);
    check_position(*rs, *l->stream);
    const unsigned action = static_cast<unsigned>(rng() % 100);
    if (rng() % drop_odds == 0) {  // drop the stream between operations
      rs->dropped_at_end = l->stream->dropped();
      rs->end = end_kind::dropped;
      stats.dropped_streams.fetch_add(1, std::memory_order_relaxed);
      l->stream.reset();
      break;
    }
    if (rng() % sleep_odds == 0) {  // fall behind for a moment
      sleeper.expires_after(std::chrono::microseconds(pick<int>(rng, 0, 2000)));
      co_await sleeper.async_wait(tuple_awaitable);
    }
    auto& s = *l->stream;
    if (action < 20) {
      rs->last_op = "try_next";
      // Drain what is queued without a round trip, as the API's fast loop does.
      for (int k = pick<int>(rng, 1, 64); k > 0 && st == step::more; --k) {
        bytecast::error_code ec;
        auto b = s.try_next(ec);
        if (ec == asio::error::would_block) break;
        st = on_next_result(*rs, ec, b, s.dropped(), false);
      }
    } else if (action < 40) {
      rs->last_op = "async_next (awaitable)";
      if (rng() % 3 == 0) {
        asio::steady_timer t(strand, std::chrono::microseconds(pick<int>(rng, 0, 500)));
        auto r = co_await (s.async_next(tuple_awaitable) || t.async_wait(tuple_awaitable));
        if (r.index() == 0) {
          auto [ec, b] = std::get<0>(r);
          st = on_next_result(*rs, ec, b, s.dropped(), false);
        } else {
          stats.or_timer_won.fetch_add(1, std::memory_order_relaxed);
        }
      } else {
        auto [ec, b] = co_await s.async_next(tuple_awaitable);
        st = on_next_result(*rs, ec, b, s.dropped(), false);
      }
    } else if (action < 52) {
      rs->last_op = "async_next_chunk (awaitable)";
      if (rng() % 3 == 0) {
        asio::steady_timer t(strand, std::chrono::microseconds(pick<int>(rng, 0, 500)));
        auto r = co_await (s.async_next_chunk(tuple_awaitable) || t.async_wait(tuple_awaitable));
        if (r.index() == 0) {
          auto [ec, c] = std::get<0>(r);
          st = on_next_result(*rs, ec, c.bytes(), s.dropped(), false);
        } else {
          stats.or_timer_won.fetch_add(1, std::memory_order_relaxed);
        }
      } else {
        auto [ec, c] = co_await s.async_next_chunk(tuple_awaitable);
        st = on_next_result(*rs, ec, c.bytes(), s.dropped(), false);
      }
    } else if (action < 68) {
      rs->last_op = "async_read_some (awaitable)";
      const std::size_t size = rng() % 16 == 0 ? 0 : pick<std::size_t>(rng, 1, rng() % 2 ? 64 : 4096);
      const std::size_t split = std::min<std::size_t>(size, pick<std::size_t>(rng, 0, 40));
      std::array<asio::mutable_buffer, 2> bufs{asio::buffer(buf_a.data(), split),
                                               asio::buffer(buf_b.data(), size - split)};
      auto gather = [&](std::size_t n) {
        std::vector<std::byte> v(buf_a.begin(), buf_a.begin() + static_cast<std::ptrdiff_t>(std::min(n, split)));
        if (n > split) v.insert(v.end(), buf_b.begin(), buf_b.begin() + static_cast<std::ptrdiff_t>(n - split));
        return v;
      };
      if (rng() % 4 == 0) {
        asio::steady_timer t(strand, std::chrono::microseconds(pick<int>(rng, 0, 500)));
        auto r = co_await (s.async_read_some(bufs, tuple_awaitable) || t.async_wait(tuple_awaitable));
        if (r.index() == 0) {
          auto [ec, n] = std::get<0>(r);
          st = on_read_some_result(*rs, ec, gather(n), size, s.dropped(), false);
        } else {
          stats.or_timer_won.fetch_add(1, std::memory_order_relaxed);
        }
      } else {
        auto [ec, n] = co_await s.async_read_some(bufs, tuple_awaitable);
        st = on_read_some_result(*rs, ec, gather(n), size, s.dropped(), false);
      }
    } else if (action < 97) {
      // A callback operation, maybe cancelled through its slot or with its stream destroyed
      // while it is pending; sometimes with a second read started while it is pending.
      const unsigned kind = static_cast<unsigned>(rng() % 3);
      const unsigned plan_draw = static_cast<unsigned>(rng() % 100);
      const pending_plan plan = plan_draw < 30   ? pending_plan::cancel
                                : plan_draw < 31 ? pending_plan::destroy
                                : plan_draw < 33 ? pending_plan::destroy_elsewhere
                                                 : pending_plan::none;
      const bool probe = rng() % 10 == 0;
      const auto delay = std::chrono::microseconds(pick<int>(rng, 0, 300));
      arm(l, plan, delay, random_cancellation_type(rng));
      rs->pending = name(plan);
      auto slot = l->signal.slot();
      // The probe: a second read while the first is pending must complete (not inline) with
      // already_started, and try_next must refuse too; neither may disturb the first read.
      auto start_probe = [rs, l, &rng] {
        auto& s2 = *l->stream;
        bytecast::error_code ec;
        auto b = s2.try_next(ec);
        if (ec != asio::error::already_started || !b.empty())
          rs->error("try_next during a pending read: '%s'", ec.message().c_str());
        ++rs->initiated;
        auto check = [rs](bytecast::error_code e, auto&&...) {
          if (rs->initiating) rs->error("the second read completed inside its initiating call");
          if (e != asio::error::already_started) rs->error("a second read completed with '%s'", e.message().c_str());
          stats.already_started.fetch_add(1, std::memory_order_relaxed);
          ++rs->completed;
        };
        rs->initiating = true;
        switch (rng() % 3) {
          case 0:
            s2.async_next(asio::bind_executor(l->strand, check));
            break;
          case 1:
            s2.async_next_chunk(asio::bind_executor(l->strand, check));
            break;
          default:
            s2.async_read_some(asio::buffer(static_cast<void*>(nullptr), 0), asio::bind_executor(l->strand, check));
            break;
        }
        rs->initiating = false;
      };
      std::uint64_t dropped = 0;
      bool aborted_ok = false;
      if (kind == 0) {
        rs->last_op = "async_next (callback)";
        auto r = co_await callback_op<span_result>(rs.get(), l->strand, [&](auto h) {
          l->stream->async_next(asio::bind_cancellation_slot(slot, std::move(h)));
          if (probe) start_probe();
          if (plan == pending_plan::destroy_elsewhere) destroy_elsewhere(l);
        });
        disarm(l);
        aborted_ok = l->cancel_emitted || l->destroyed_while_pending || l->destroyed_elsewhere;
        if (l->destroyed_while_pending && r.ec != asio::error::operation_aborted)
          rs->error("a read pending while its stream was destroyed completed with '%s'", r.ec.message().c_str());
        if (!l->stream) break;
        dropped = l->stream->dropped();
        st = on_next_result(*rs, r.ec, r.b, dropped, aborted_ok);
      } else if (kind == 1) {
        rs->last_op = "async_next_chunk (callback)";
        auto r = co_await callback_op<chunk_result>(rs.get(), l->strand, [&](auto h) {
          l->stream->async_next_chunk(asio::bind_cancellation_slot(slot, std::move(h)));
          if (probe) start_probe();
          if (plan == pending_plan::destroy_elsewhere) destroy_elsewhere(l);
        });
        disarm(l);
        aborted_ok = l->cancel_emitted || l->destroyed_while_pending || l->destroyed_elsewhere;
        if (l->destroyed_while_pending && r.ec != asio::error::operation_aborted)
          rs->error("a read pending while its stream was destroyed completed with '%s'", r.ec.message().c_str());
        if (!l->stream) break;
        dropped = l->stream->dropped();
        st = on_next_result(*rs, r.ec, r.c.bytes(), dropped, aborted_ok);
      } else {
        rs->last_op = "async_read_some (callback)";
        const std::size_t size = pick<std::size_t>(rng, 1, rng() % 2 ? 32 : 4096);
        auto r = co_await callback_op<size_result>(rs.get(), l->strand, [&](auto h) {
          l->stream->async_read_some(asio::buffer(buf_a.data(), size),
                                     asio::bind_cancellation_slot(slot, std::move(h)));
          if (probe) start_probe();
          if (plan == pending_plan::destroy_elsewhere) destroy_elsewhere(l);
        });
        disarm(l);
        aborted_ok = l->cancel_emitted || l->destroyed_while_pending || l->destroyed_elsewhere;
        if (l->destroyed_while_pending && r.ec != asio::error::operation_aborted)
          rs->error("a read pending while its stream was destroyed completed with '%s'", r.ec.message().c_str());
        if (!l->stream) break;
        dropped = l->stream->dropped();
        st = on_read_some_result(*rs, r.ec, std::span(buf_a.data(), std::min(r.n, size)), size, dropped, aborted_ok);
      }
    } else {
      // A zero-size async_read_some completes at once with 0 bytes and takes nothing.
      rs->last_op = "async_read_some (zero-size)";
      auto [ec, n] = co_await s.async_read_some(asio::mutable_buffer(), tuple_awaitable);
      if (ec || n != 0) rs->error("a zero-size async_read_some completed with '%s', %zu", ec.message().c_str(), n);
    }
  }
  if (l->destroyed_while_pending || l->destroyed_elsewhere) {
    rs->end = end_kind::dropped_pending;
    if (l->destroyed_while_pending) stats.dropped_pending.fetch_add(1, std::memory_order_relaxed);
  }
  if (st == step::finished && l->stream) {
    check_position(*rs, *l->stream);
    record_end_position(*rs, *l->stream);
    // After the sentinel: eof, every time. After overflowed or the reason: the same again.
    const bytecast::error_code again = rs->after_end();
    bytecast::error_code ec;
    (void)l->stream->try_next(ec);
    if (ec != again)
      rs->error("try_next after the end: '%s'", ec.message().c_str());
    auto [ec2, b] = co_await l->stream->async_next(tuple_awaitable);
    if (ec2 != again)
      rs->error("async_next after the end: '%s'", ec2.message().c_str());
    char c;
    auto [ec3, n] = co_await l->stream->async_read_some(asio::buffer(&c, 1), tuple_awaitable);
    if (ec3 != again)
      rs->error("async_read_some after the end: '%s'", ec3.message().c_str());
  }
  l->stream.reset();
}

// ---------------------------------------------------------------------------------------------
// Typed readers
// ---------------------------------------------------------------------------------------------

struct value_result {
  bytecast::error_code ec;
  std::optional<item> v;
};

step on_value_result(reader_state& rs, bytecast::error_code ec, const std::optional<item>& v, std::uint64_t dropped,
                     bool abort_allowed) {
  if (!ec) {
    if (!v) {
      rs.on_end(end_kind::sentinel, dropped);
      return step::finished;
    }
    rs.on_value(*v);
    return step::more;
  }
  if (ec == bytecast::error::lagged) {
    if (v) rs.error("lagged with a value");
    rs.on_lagged();
    return step::more;
  }
  if (ec == bytecast::error::overflowed) {
    rs.on_overflowed(dropped);
    return step::finished;
  }
  if (rs.is_reason(ec)) {
    rs.on_end(end_kind::reason, dropped);
    return step::finished;
  }
  if (ec == asio::error::operation_aborted && abort_allowed) return step::more;
  rs.error("%s: unexpected '%s'", rs.last_op, ec.message().c_str());
  rs.end = end_kind::failed;
  return step::stop;
}

using typed_stream = bytecast::typed_stream<item>;

asio::awaitable<void> typed_reader(std::shared_ptr<reader_state> rs, typed_stream stream) {
  auto strand = co_await asio::this_coro::executor;
  auto l = std::make_shared<reader_local<typed_stream>>(strand);
  l->stream.emplace(std::move(stream));
  std::mt19937_64 rng(rs->seed);
  asio::steady_timer sleeper(strand);
  const unsigned sleep_odds = pick<unsigned>(rng, 2, 40);
  const unsigned drop_odds = pick<unsigned>(rng, 300, 5000);
  step st = step::more;
  while (st == step::more) {
    publish_backlog(*rs, *l->stream);
    if (rng() % drop_odds == 0) {
      rs->dropped_at_end = l->stream->dropped();
      rs->end = end_kind::dropped;
      stats.dropped_streams.fetch_add(1, std::memory_order_relaxed);
      l->stream.reset();
      break;
    }
    if (rng() % sleep_odds == 0) {
      sleeper.expires_after(std::chrono::microseconds(pick<int>(rng, 0, 2000)));
      co_await sleeper.async_wait(tuple_awaitable);
    }
    auto& s = *l->stream;
    const unsigned action = static_cast<unsigned>(rng() % 100);
    if (action < 25) {
      rs->last_op = "try_next";
      for (int k = pick<int>(rng, 1, 64); k > 0 && st == step::more; --k) {
        bytecast::error_code ec;
        auto v = s.try_next(ec);
        if (ec == asio::error::would_block) break;
        st = on_value_result(*rs, ec, v, s.dropped(), false);
      }
    } else if (action < 60) {
      rs->last_op = "async_next (awaitable)";
      if (rng() % 3 == 0) {
        asio::steady_timer t(strand, std::chrono::microseconds(pick<int>(rng, 0, 500)));
        auto r = co_await (s.async_next(tuple_awaitable) || t.async_wait(tuple_awaitable));
        if (r.index() == 0) {
          auto [ec, v] = std::get<0>(std::move(r));
          st = on_value_result(*rs, ec, v, s.dropped(), false);
        } else {
          stats.or_timer_won.fetch_add(1, std::memory_order_relaxed);
        }
      } else {
        auto [ec, v] = co_await s.async_next(tuple_awaitable);
        st = on_value_result(*rs, ec, v, s.dropped(), false);
      }
    } else {
      rs->last_op = "async_next (callback)";
      const unsigned plan_draw = static_cast<unsigned>(rng() % 100);
      const pending_plan plan = plan_draw < 30   ? pending_plan::cancel
                                : plan_draw < 31 ? pending_plan::destroy
                                : plan_draw < 33 ? pending_plan::destroy_elsewhere
                                                 : pending_plan::none;
      const bool probe = rng() % 10 == 0;
      arm(l, plan, std::chrono::microseconds(pick<int>(rng, 0, 300)), random_cancellation_type(rng));
      rs->pending = name(plan);
      auto slot = l->signal.slot();
      auto r = co_await callback_op<value_result>(rs.get(), l->strand, [&](auto h) {
        l->stream->async_next(asio::bind_cancellation_slot(slot, std::move(h)));
        if (probe) {
          bytecast::error_code ec;
          auto v = l->stream->try_next(ec);
          if (ec != asio::error::already_started || v)
            rs->error("try_next during a pending read: '%s'", ec.message().c_str());
          ++rs->initiated;
          rs->initiating = true;
          l->stream->async_next(asio::bind_executor(l->strand, [rs](bytecast::error_code e, std::optional<item> v2) {
            if (rs->initiating) rs->error("the second read completed inside its initiating call");
            if (e != asio::error::already_started || v2)
              rs->error("a second read completed with '%s'", e.message().c_str());
            stats.already_started.fetch_add(1, std::memory_order_relaxed);
            ++rs->completed;
          }));
          rs->initiating = false;
        }
        if (plan == pending_plan::destroy_elsewhere) destroy_elsewhere(l);
      });
      disarm(l);
      const bool aborted_ok = l->cancel_emitted || l->destroyed_while_pending || l->destroyed_elsewhere;
      if (l->destroyed_while_pending && r.ec != asio::error::operation_aborted)
        rs->error("a read pending while its stream was destroyed completed with '%s'", r.ec.message().c_str());
      if (!l->stream) break;
      st = on_value_result(*rs, r.ec, r.v, l->stream->dropped(), aborted_ok);
    }
  }
  if (l->destroyed_while_pending || l->destroyed_elsewhere) {
    rs->end = end_kind::dropped_pending;
    if (l->destroyed_while_pending) stats.dropped_pending.fetch_add(1, std::memory_order_relaxed);
  }
  if (st == step::finished && l->stream) {
    const bytecast::error_code again = rs->after_end();
    bytecast::error_code ec;
    (void)l->stream->try_next(ec);
    if (ec != again)
      rs->error("try_next after the end: '%s'", ec.message().c_str());
    auto [ec2, v] = co_await l->stream->async_next(tuple_awaitable);
    if (ec2 != again)
      rs->error("async_next after the end: '%s'", ec2.message().c_str());
  }
  l->stream.reset();
}

// ---------------------------------------------------------------------------------------------
// Readers through a stalled_monitor with a tiny timeout
// ---------------------------------------------------------------------------------------------

template <class Stream>
asio::awaitable<void> monitor_reader(std::shared_ptr<reader_state> rs, Stream stream) {
  constexpr bool typed = std::is_same_v<Stream, typed_stream>;
  using value_type = std::conditional_t<typed, std::optional<item>, std::span<const std::byte>>;
  auto strand = co_await asio::this_coro::executor;
  std::mt19937_64 rng(rs->seed);
  auto monitor =
      bytecast::stalled_monitor{std::move(stream)}.with_timeout(std::chrono::microseconds(pick<int>(rng, 20, 2000)));
  if (rng() % 3 == 0) monitor.with_throttle(std::chrono::microseconds(pick<int>(rng, 1, 100)));
  asio::steady_timer sleeper(strand);
  const unsigned sleep_odds = pick<unsigned>(rng, 4, 60);
  auto handle = [&](bytecast::error_code ec, const value_type& v, bool abort_ok) {
    if (ec == asio::error::timed_out) {
      stats.monitor_timeouts.fetch_add(1, std::memory_order_relaxed);
      bool empty = false;
      if constexpr (typed)
        empty = !v.has_value();
      else
        empty = v.empty();
      if (!empty) rs->error("timed_out with a value");
      return step::more;
    }
    const std::uint64_t dropped = monitor.inner().dropped();
    if constexpr (typed)
      return on_value_result(*rs, ec, v, dropped, abort_ok);
    else
      return on_next_result(*rs, ec, v, dropped, abort_ok);
  };
  step st = step::more;
  asio::cancellation_signal signal;
  while (st == step::more) {
    publish_backlog(*rs, monitor.inner());
    // Only its start: a monitor's read may still hold the inner stream's read after a timeout.
    if constexpr (!typed)
      if (!rs->have_base) check_position(*rs, monitor.inner());
    if (rng() % sleep_odds == 0) {
      sleeper.expires_after(std::chrono::microseconds(pick<int>(rng, 0, 3000)));
      co_await sleeper.async_wait(tuple_awaitable);
    }
    const unsigned action = static_cast<unsigned>(rng() % 100);
    if (action < 50) {
      rs->last_op = "monitor async_next (awaitable)";
      auto [ec, v] = co_await monitor.async_next(tuple_awaitable);
      st = handle(ec, v, false);
    } else if (action < 75) {
      rs->last_op = "monitor async_next || timer";
      asio::steady_timer t(strand, std::chrono::microseconds(pick<int>(rng, 0, 1000)));
      auto r = co_await (monitor.async_next(tuple_awaitable) || t.async_wait(tuple_awaitable));
      if (r.index() == 0) {
        auto [ec, v] = std::get<0>(std::move(r));
        st = handle(ec, v, false);
      } else {
        stats.or_timer_won.fetch_add(1, std::memory_order_relaxed);
      }
    } else {
      rs->last_op = "monitor async_next (callback, slot)";
      // Cancelled through the slot from a timer on this strand, maybe.
      const bool cancel = rng() % 2 == 0;
      auto gen = std::make_shared<bool>(true);  // pending
      asio::steady_timer t(strand, std::chrono::microseconds(pick<int>(rng, 0, 500)));
      bool emitted = false;
      if (cancel)
        t.async_wait([gen, &signal, &emitted, type = random_cancellation_type(rng)](bytecast::error_code ec) {
          if (ec || !*gen) return;
          emitted = true;
          stats.cancels.fetch_add(1, std::memory_order_relaxed);
          signal.emit(type);
        });
      struct result {
        bytecast::error_code ec;
        value_type v;
      };
      auto r = co_await callback_op<result>(rs.get(), strand, [&](auto h) {
        monitor.async_next(asio::bind_cancellation_slot(signal.slot(), std::move(h)));
      });
      *gen = false;
      t.cancel();
      // The timer's handler must run before `emitted` and `signal` go out of scope.
      t.expires_after(0s);
      co_await t.async_wait(tuple_awaitable);
      st = handle(r.ec, r.v, emitted);
    }
  }
  if (st == step::finished) {
    if constexpr (!typed) record_end_position(*rs, monitor.inner());
    const bytecast::error_code again = rs->after_end();
    auto [ec, v] = co_await monitor.async_next(tuple_awaitable);
    if (ec != again)
      rs->error("monitor async_next after the end: '%s'", ec.message().c_str());
  }
}

// ---------------------------------------------------------------------------------------------
// Producers
// ---------------------------------------------------------------------------------------------

enum class write_result { ok, closed, would_block, aborted };

// Waits for an async write's (or a wait for streams') completion, checking that it completes
// exactly once and not inline. The producer thread runs no handlers: a completion on it is an
// inline one.
struct async_write_wait {
  std::promise<bytecast::error_code> done;
  std::atomic<int> calls{0};
  std::thread::id producer_thread = std::this_thread::get_id();
  const char* what = "";
  void complete(bytecast::error_code ec) {
    if (std::this_thread::get_id() == producer_thread) fail("%s completed inside its initiating call", what);
    if (calls.fetch_add(1) != 0) return fail("%s completed twice", what);
    done.set_value(ec);
  }
};

write_result classify(bytecast::error_code ec, const char* what) {
  if (!ec) return write_result::ok;
  if (ec == asio::error::broken_pipe) return write_result::closed;
  if (ec == asio::error::would_block) return write_result::would_block;
  if (ec == asio::error::operation_aborted) return write_result::aborted;
  fail("%s failed with '%s'", what, ec.message().c_str());
  return write_result::closed;
}

void producer(asio::io_context& ctx, writer_slot& ws, std::uint32_t p, std::uint64_t seed,
              const std::atomic<bool>& stop, steady::time_point destroy_at, bool owner) {
  std::mt19937_64 rng(seed);
  producer_state& ps = *ws.producers[p];
  auto strand = asio::make_strand(ctx);
  std::vector<std::byte> bytes, header_bytes;
  std::uint32_t seq = 0;
  const unsigned burst_max = pick<unsigned>(rng, 1, 64);
  const int pause_max_us = pick<int>(rng, 0, 400);
  unsigned burst = 0;
  std::uint64_t since_check = 0;
  // Starts an asynchronous operation with `start` and waits for it; with `cancel`, cancels it
  // (through its slot) within `max_delay` unless it completed by then.
  auto wait_async = [&](auto start, const char* what, bool cancel, int max_delay_us = 300) -> write_result {
    auto w = std::make_shared<async_write_wait>();
    w->what = what;
    auto fut = w->done.get_future();
    asio::cancellation_signal signal;
    start(asio::bind_cancellation_slot(
        signal.slot(), asio::bind_executor(strand, [w](bytecast::error_code ec, auto&&...) { w->complete(ec); })));
    if (cancel) {
      std::this_thread::sleep_for(std::chrono::microseconds(pick<int>(rng, 0, max_delay_us)));
      // Emitted on the strand that runs the handler, so it never races the completion.
      std::promise<void> emitted;
      asio::post(strand, [&signal, &emitted, w] {
        if (w->calls.load() == 0) signal.emit(asio::cancellation_type::terminal);
        emitted.set_value();
      });
      emitted.get_future().wait();
    }
    if (fut.wait_for(120s) != std::future_status::ready) {
      fail("writer %u producer %u: %s never completed", ws.index, p, what);
      std::fflush(stderr);
      std::_Exit(3);
    }
    auto r = classify(fut.get(), what);
    if (r == write_result::aborted && !cancel) fail("%s completed with operation_aborted without a cancellation", what);
    return r;
  };
  // An async write, cancelled now and then. Nothing holds a viewers-only writer back: such a
  // write completes at once, so a cancellation never aborts it.
  auto write_async = [&](auto start, const char* what) -> write_result {
    const write_result r = wait_async(start, what, rng() % 4 == 0);
    if (r == write_result::aborted) {
      stats.write_cancelled.fetch_add(1, std::memory_order_relaxed);
      if (ws.cfg.viewers_only) fail("writer %u (viewers only): %s was held back and cancelled", ws.index, what);
    }
    return r;
  };
  // Waits for demand as a lazy producer would: for at least `n` streams, or for none; cancelled
  // after a while unless it completed by then.
  auto wait_for_demand = [&](bool for_none, std::size_t n) {
    stats.stream_waits.fetch_add(1, std::memory_order_relaxed);
    const char* what = for_none ? "async_wait_no_streams" : "async_wait_for_streams";
    auto start = [&](auto h) {
      auto begin = [&](auto& w) {
        if (for_none)
          w.async_wait_no_streams(std::move(h));
        else
          w.async_wait_for_streams(n, std::move(h));
      };
      if (ws.cfg.typed)
        begin(*ws.tw);
      else
        begin(*ws.bw);
    };
    switch (wait_async(start, what, true, 3000)) {
      case write_result::ok:
        stats.stream_waits_met.fetch_add(1, std::memory_order_relaxed);
        break;
      case write_result::aborted:
        stats.stream_waits_cancelled.fetch_add(1, std::memory_order_relaxed);
        break;
      case write_result::closed:
        if (ws.cfg.typed ? ws.tw->is_open() : ws.bw->is_open())
          fail("writer %u: %s completed with broken_pipe, but the writer is open", ws.index, what);
        break;
      case write_result::would_block:
        fail("writer %u: %s completed with would_block", ws.index, what);
        break;
    }
  };
  if (rng() % 4 == 0) wait_for_demand(false, 1);  // start once someone listens

  for (;;) {
    if (stop.load(std::memory_order_relaxed) || ws.retire.load(std::memory_order_relaxed)) break;
    if (owner && ws.cfg.destroy_mid_run && steady::now() >= destroy_at) break;
    // Now and then, wait for more streams than there are, or for none (both usually cancelled).
    if (rng() % 256 == 0) {
      const std::size_t count = ws.cfg.typed ? ws.tw->stream_count() : ws.bw->stream_count();
      wait_for_demand(rng() % 2 == 0, count + pick<std::size_t>(rng, 0, 2));
    }
    // Backpressure for unbounded streams: the readers publish their backlogs.
    if (++since_check % 32 == 0) {
      for (int k = 0; k < 200; ++k) {
        std::size_t worst = 0;
        {
          std::lock_guard lock(ws.readers_mutex);
          for (auto& r : ws.readers)
            if (r->pol == policy::unbounded && !r->done.load(std::memory_order_relaxed))
              worst = std::max(worst, r->backlog.load(std::memory_order_relaxed));
        }
        if (worst < 2000) break;
        std::this_thread::sleep_for(250us);
      }
    }
    // The owner changes the header now and then, racing the other producer's writes and the
    // streams made meanwhile; header() is what it set.
    if (owner && ws.cfg.headers && rng() % 128 == 0) {
      const std::uint32_t g = ws.header_started.load() + 1;
      ws.set_header_generation(g, header_bytes, rng() % 2 == 0);
      stats.headers_set.fetch_add(1, std::memory_order_relaxed);
      const bytecast::chunk h = ws.bw->header();
      if (generation_has_header(g) ? !std::ranges::equal(h.bytes(), header_bytes) : !h.empty())
        fail("writer %u: header() is not the header generation %u just set", ws.index, g);
    }
    write_result r = write_result::ok;
    const unsigned how = static_cast<unsigned>(rng() % 100);
    if (!ws.cfg.typed && ws.sync(p, seq)) {
      // A sync point, with each tagged form.
      auto& w = *ws.bw;
      encode(bytes, ws.index, p, seq);
      const std::span<const std::byte> data(bytes);
      stats.sync_writes.fetch_add(1, std::memory_order_relaxed);
      if (how < 30) {
        bytecast::error_code ec;
        const std::size_t n = w.write(data, bytecast::sync_point, ec);
        r = classify(ec, "write(span, sync_point, ec)");
        if (r == write_result::ok && n != data.size()) fail("write returned %zu for %zu bytes", n, data.size());
      } else if (how < 45) {
        try {
          w.write(data, bytecast::sync_point);
        } catch (const bytecast::system_error& e) {
          r = classify(e.code(), "write(span, sync_point)");
        }
      } else if (how < 60) {
        try {
          w.write(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), bytecast::sync_point);
        } catch (const bytecast::system_error& e) {
          r = classify(e.code(), "write(string_view, sync_point)");
        }
      } else {
        r = write_async([&](auto h) { w.async_write(asio::buffer(bytes), bytecast::sync_point, std::move(h)); },
                        "async_write(sync_point)");
      }
    } else if (!ws.cfg.typed) {
      auto& w = *ws.bw;
      if (how < 2) {  // an empty write delivers nothing
        bytecast::error_code ec;
        if (w.write(std::span<const std::byte>{}, ec) != 0) fail("an empty write returned non-zero");
        stats.empty_writes.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      encode(bytes, ws.index, p, seq);
      const std::span<const std::byte> data(bytes);
      const bool bounded_wait = ws.cfg.pol == policy::wait;
      if (how < 20) {
        bytecast::error_code ec;
        const std::size_t n = w.write(data, ec);
        r = classify(ec, "write(span, ec)");
        if (r == write_result::ok && n != data.size()) fail("write returned %zu for %zu bytes", n, data.size());
      } else if (how < 30) {
        try {
          w.write(data);
        } catch (const bytecast::system_error& e) {
          r = classify(e.code(), "write(span)");
        }
      } else if (how < 38) {
        try {
          w.write(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
        } catch (const bytecast::system_error& e) {
          r = classify(e.code(), "write(string_view)");
        }
      } else if (how < 48) {
        bytecast::error_code ec;
        const std::size_t split = rng() % bytes.size();
        std::array<asio::const_buffer, 2> bufs{asio::buffer(bytes.data(), split),
                                               asio::buffer(bytes.data() + split, bytes.size() - split)};
        const std::size_t n = w.write_some(bufs, ec);
        r = classify(ec, "write_some(two buffers, ec)");
        if (r == write_result::ok && n != bytes.size()) fail("write_some returned %zu for %zu", n, bytes.size());
      } else if (how < 54) {
        try {
          asio::write(w, asio::buffer(bytes));
        } catch (const bytecast::system_error& e) {
          r = classify(e.code(), "asio::write");
        }
      } else if (how < 70 || (bounded_wait && how < 85)) {
        r = write_async([&](auto h) { w.async_write(asio::buffer(bytes), std::move(h)); }, "async_write");
      } else if (how < 85) {
        r = write_async([&](auto h) { w.async_write_some(asio::buffer(bytes), std::move(h)); }, "async_write_some");
      } else {
        r = write_async([&](auto h) { asio::async_write(w, asio::buffer(bytes), std::move(h)); }, "asio::async_write");
      }
    } else {
      auto& w = *ws.tw;
      item v = make_item(ws.index, p, seq);
      if (how < 35) {
        try {
          w.write(v);
        } catch (const bytecast::system_error& e) {
          r = classify(e.code(), "typed write(const T&)");
        }
      } else if (how < 60) {
        try {
          w.write(std::move(v));
        } catch (const bytecast::system_error& e) {
          r = classify(e.code(), "typed write(T&&)");
        }
      } else {
        r = write_async([&](auto h) { w.async_write(std::move(v), std::move(h)); }, "typed async_write");
      }
    }
    if (r == write_result::closed) break;
    if (r == write_result::would_block) {
      stats.write_would_block.fetch_add(1, std::memory_order_relaxed);
      if (ws.cfg.viewers_only) fail("writer %u (viewers only): a write failed with would_block", ws.index);
      std::this_thread::sleep_for(std::chrono::microseconds(pick<int>(rng, 10, 200)));
      continue;
    }
    if (r == write_result::aborted) continue;  // delivered to nobody: the same seq again
    ps.prefix.push_back(ps.prefix.back() + ws.weight(p, seq));
    ++seq;
    ps.next_seq.store(seq, std::memory_order_release);
    stats.writes.fetch_add(1, std::memory_order_relaxed);
    if (ws.cfg.viewers_only) stats.viewer_only_writes.fetch_add(1, std::memory_order_relaxed);
    if (++burst >= burst_max) {
      burst = 0;
      if (pause_max_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(pick<int>(rng, 0, pause_max_us)));
    }
  }
  ws.producers_running.fetch_sub(1);
  if (owner && ws.cfg.destroy_mid_run) {
    // Stop the other producers of this writer, then destroy it while its readers run.
    ws.retire = true;
    while (ws.producers_running.load() != 0) std::this_thread::sleep_for(100us);
    std::lock_guard lock(ws.life);
    if (ws.alive()) {
      ws.destroy_locked();
      stats.writers_destroyed_mid.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Rounds
// ---------------------------------------------------------------------------------------------

struct round_context {
  int round = 0;
  std::uint64_t seed = 0;
  asio::io_context ctx;
  std::vector<std::unique_ptr<writer_slot>> writers;
  std::vector<std::shared_ptr<reader_state>> readers;
  std::atomic<int> readers_running{0};
  int next_reader = 0;
};

// Streams that live for one read: made, read with a callback, and destroyed at once by this
// thread while the read is pending (it runs on the io_context threads, racing the destruction).
// Each read must complete exactly once: with operation_aborted, or normally when it ran first.
struct churn_counts {
  std::atomic<std::uint64_t> started{0}, completed{0};
};

// Options stream() refuses with invalid_argument, making no stream (API.md sections 6 and 7).
template <class Writer>
void expect_invalid(Writer& w, const bytecast::stream_options& o, const char* what) {
  stats.invalid_options.fetch_add(1, std::memory_order_relaxed);
  try {
    auto s = w.stream(o);
    fail("stream() with %s made a stream", what);
  } catch (const bytecast::system_error& e) {
    if (e.code() != asio::error::invalid_argument)
      fail("stream() with %s threw '%s', not invalid_argument", what, e.code().message().c_str());
  }
}

void probe_invalid_options(writer_slot& w, std::mt19937_64& rng) {
  bytecast::stream_options o;
  if (w.cfg.typed) {
    if (rng() % 2 == 0)
      o.from_position = 0;
    else
      o.align_to_sync_points = true;
    return expect_invalid(*w.tw, o, "a section 7 option on a typed writer");
  }
  if (rng() % 2 == 0) {
    o.from_position = w.bw->bytes_written() + (std::uint64_t{1} << 40);  // no write gets there
    return expect_invalid(*w.bw, o, "from_position ahead of bytes_written()");
  }
  o.from_position = 0;
  o.align_to_sync_points = true;
  expect_invalid(*w.bw, o, "from_position and align_to_sync_points");
}

void churner(round_context& rc, std::uint64_t seed, const std::atomic<bool>& stop, churn_counts& cc) {
  std::mt19937_64 rng(seed);
  for (std::uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
    if (i % 16 == 0) std::this_thread::sleep_for(100us);
    auto& w = *rc.writers[rng() % rc.writers.size()];
    // A stream of a writer closed with a reason may read that reason.
    auto handler = [&cc, reason = w.cfg.reason](const char* what) {
      return [&cc, what, reason](bytecast::error_code ec, auto&&...) {
        if (ec && ec != asio::error::operation_aborted && ec != bytecast::error::lagged &&
            ec != bytecast::error::overflowed && ec != asio::error::eof && ec != reason)
          fail("%s of a stream destroyed at once completed with '%s'", what, ec.message().c_str());
        cc.completed.fetch_add(1);
      };
    };
    std::unique_lock lock(w.life);
    if (!w.alive()) continue;
    if (rng() % 32 == 0) {
      probe_invalid_options(w, rng);
      continue;
    }
    const auto o = random_stream_options(rng, w.cfg, rng() % 2 == 0);
    if (!w.cfg.typed) {
      auto s = make_stream(*w.bw, o);
      lock.unlock();
      cc.started.fetch_add(1);
      switch (rng() % 3) {
        case 0:
          s.async_next(handler("async_next"));
          break;
        case 1:
          s.async_next_chunk(handler("async_next_chunk"));
          break;
        default: {
          auto buf = std::make_shared<std::array<char, 64>>();
          s.async_read_some(asio::buffer(*buf), [buf, h = handler("async_read_some")](
                                                    bytecast::error_code ec, std::size_t n) mutable { h(ec, n); });
          break;
        }
      }
    } else {
      auto s = make_stream(*w.tw, o);
      lock.unlock();
      cc.started.fetch_add(1);
      s.async_next(handler("typed async_next"));
    }
    stats.churned.fetch_add(1, std::memory_order_relaxed);
  }
}

// Creates a reader of writer `ws` (with its lock held: the writer exists) and starts it.
void spawn_reader(round_context& rc, writer_slot& ws, std::mt19937_64& rng, bool late) {
  auto rs = std::make_shared<reader_state>();
  rs->round = rc.round;
  rs->id = rc.next_reader++;
  rs->slot = &ws;
  rs->late = late;
  rs->replay = ws.cfg.replay != 0 && rng() % 2 == 0;
  bytecast::stream_options o = random_stream_options(rng, ws.cfg, rs->replay);
  rs->own_options = o.queue_limit || o.on_overflow;
  rs->align = o.align_to_sync_points;
  rs->per.resize(ws.producers.size());
  for (std::size_t p = 0; p < ws.producers.size(); ++p)
    rs->per[p].lo = ws.producers[p]->next_seq.load(std::memory_order_acquire);
  // A resume (single-producer byte writers with replay, where a position is a sum of chunk sizes):
  // at the start of a recent chunk or inside it, or at the end; maybe older than the window. The
  // stream ignores `replay`; its items start at that chunk.
  if (!ws.cfg.typed && ws.cfg.producers == 1 && ws.cfg.replay != 0 && rng() % 4 == 0) {
    const std::uint64_t written = rs->per[0].lo;
    const std::uint64_t k = written - std::min<std::uint64_t>(written, pick<std::uint64_t>(rng, 0, 40));
    const std::size_t off = k < written && rng() % 2 == 0 ? rng() % ws.weight(0, static_cast<std::uint32_t>(k)) : 0;
    rs->resume = true;
    rs->replay = false;
    rs->align = o.align_to_sync_points = false;
    rs->resume_seq = static_cast<std::uint32_t>(k);
    rs->from_pos = ws.weight_range(0, 0, k) + off;
    o.from_position = rs->from_pos;
    if (off != 0) {
      encode(rs->resume_prefix, ws.index, 0, rs->resume_seq);
      rs->resume_prefix.resize(off);
    }
    rs->per[0].lo = k;
    stats.resumed_streams.fetch_add(1, std::memory_order_relaxed);
  }
  if (rs->align) stats.aligned_streams.fetch_add(1, std::memory_order_relaxed);
  rs->limit = ws.cfg.limit_of(o);
  rs->pol = ws.cfg.policy_of(o);
  rs->monitor = rng() % 4 == 0;
  rs->seed = mix(rc.seed ^ (static_cast<std::uint64_t>(rc.round) << 32) ^ static_cast<std::uint64_t>(rs->id) << 8);
  auto strand = asio::make_strand(rc.ctx);
  auto done = [rs, &rc](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        rs->error("the reader threw: %s", x.what());
      }
    }
    rs->done = true;
    rc.readers_running.fetch_sub(1);
  };
  rc.readers_running.fetch_add(1);
  if (late) stats.late_joiners.fetch_add(1, std::memory_order_relaxed);
  if (rs->replay) stats.replay_streams.fetch_add(1, std::memory_order_relaxed);
  if (rs->monitor) stats.monitors.fetch_add(1, std::memory_order_relaxed);
  if (rs->own_options) stats.own_options.fetch_add(1, std::memory_order_relaxed);
  auto finish_join = [&] {
    for (std::size_t p = 0; p < ws.producers.size(); ++p)
      rs->per[p].hi = ws.producers[p]->next_seq.load(std::memory_order_acquire) + std::uint64_t{1};
    {
      std::lock_guard lock(ws.readers_mutex);
      ws.readers.push_back(rs);
    }
    rc.readers.push_back(rs);
  };
  if (!ws.cfg.typed) {
    rs->header_lo = ws.header_done.load();
    rs->written_before = ws.bw->bytes_written();
    auto s = make_stream(*ws.bw, o);
    rs->written_after = ws.bw->bytes_written();
    rs->header_hi = ws.header_started.load();
    finish_join();
    if (rs->monitor)
      asio::co_spawn(strand, monitor_reader(rs, std::move(s)), done);
    else
      asio::co_spawn(strand, byte_reader(rs, std::move(s)), done);
  } else {
    auto s = make_stream(*ws.tw, o);
    finish_join();
    if (rs->monitor)
      asio::co_spawn(strand, monitor_reader(rs, std::move(s)), done);
    else
      asio::co_spawn(strand, typed_reader(rs, std::move(s)), done);
  }
}

// After the round: everything a reader saw against what its writer's producers wrote.
void verify(reader_state& rs) {
  const writer_slot& ws = *rs.slot;
  if (rs.initiated != rs.completed)
    rs.error("%" PRIu64 " callback operations started, %" PRIu64 " completed", rs.initiated, rs.completed);
  if (rs.end == end_kind::running) rs.error("never finished");
  if (rs.end == end_kind::failed) return;
  // The writer's first close decides how its streams end: with its reason, or the sentinel.
  const first_close how = ws.closed.load();
  if (rs.end == end_kind::sentinel && how == first_close::reason)
    rs.error("the sentinel, though the writer was first closed with a reason");
  if (rs.end == end_kind::reason && how != first_close::reason)
    rs.error("the close reason, though the writer was first closed without one");
  const bool lossy = rs.pol == policy::drop_oldest;
  const bool reached_end = rs.end == end_kind::sentinel || rs.end == end_kind::reason;
  std::uint64_t known_gaps = 0, min_initial = 0, max_initial = 0, replayed = 0;
  for (std::uint32_t p = 0; p < rs.per.size(); ++p) {
    const producer_view& v = rs.per[p];
    const std::uint64_t total = ws.producers[p]->next_seq.load();
    if (v.last >= static_cast<std::int64_t>(total))
      rs.error("producer %u: seq %" PRId64 " received but only %" PRIu64 " written", p, v.last, total);
    // An aligned stream skips what is written after its creation up to a sync point: none of
    // those is one (unless a drop_oldest gap may have taken it).
    const bool may_skip_syncs = lossy && (!rs.single_producer() || v.lagged_before_first != 0);
    if (!lossy && !rs.align && v.first >= 0 && static_cast<std::uint64_t>(v.first) > v.hi)
      rs.error("producer %u: the first item is seq %" PRId64 ", but seq %" PRIu64 " was written after the join", p,
               v.first, v.hi);
    if (rs.align && !may_skip_syncs && v.first >= 0 &&
        ws.any_sync(p, v.hi, std::max<std::uint64_t>(v.hi, static_cast<std::uint64_t>(v.first))))
      rs.error("producer %u: the first item is seq %" PRId64 ", but a sync point among seqs %" PRIu64
               ".. was written after the join",
               p, v.first, v.hi);
    if (rs.resume && v.first >= 0 && (v.lagged_before_first == 0) != (v.first == rs.resume_seq))
      rs.error("resumed at seq %u (position %" PRIu64 "): the first item is seq %" PRId64 " after %u lagged reads",
               rs.resume_seq, rs.from_pos, v.first, v.lagged_before_first);
    if (reached_end && (!lossy || rs.single_producer())) {
      if (v.first >= 0 && static_cast<std::uint64_t>(v.last) + 1 != total && !(rs.align && lossy))
        rs.error("producer %u: the last item is seq %" PRId64 " of %" PRIu64 " written", p, v.last, total);
      if (v.first < 0 && total > v.hi &&
          (!rs.align || (ws.any_sync(p, v.hi, total) && (!lossy || rs.lagged_total == 0))))
        rs.error("producer %u: nothing received, though seqs %" PRIu64 "..%" PRIu64 " were written after the join%s",
                 p, v.hi, total - 1, rs.align ? " (a sync point among them)" : "");
    }
    replayed += v.replayed_weight;
    if (lossy && reached_end) {
      const std::uint64_t f = v.first >= 0 ? static_cast<std::uint64_t>(v.first) : total;
      known_gaps +=
          v.gap_weight + (v.first >= 0 ? ws.weight_range(p, static_cast<std::uint64_t>(v.last) + 1, total) : 0);
      if (f >= v.lo) {
        min_initial += ws.weight_range(p, std::min(v.hi, f), f);
        max_initial += ws.weight_range(p, v.lo, f);
      }
      if (!rs.replay && !rs.align && rs.single_producer()) {
        if (v.first >= 0 && static_cast<std::uint64_t>(v.first) > v.hi && v.lagged_before_first == 0)
          rs.error("items dropped before the first one (seq %" PRId64 ") without a lagged read", v.first);
      }
    } else if (lossy) {
      known_gaps += v.gap_weight;
    }
  }
  if (rs.replay && replayed > ws.cfg.replay)
    rs.error("replayed %" PRIu64 " weight of items written before the join; replay_limit is %zu", replayed,
             ws.cfg.replay);
  if (lossy && (reached_end || rs.end == end_kind::dropped)) {
    if (rs.dropped_at_end < known_gaps)
      rs.error("dropped() is %" PRIu64 " but the gaps seen add up to %" PRIu64, rs.dropped_at_end, known_gaps);
    if (reached_end && !rs.replay && !rs.resume) {
      const std::uint64_t initial = rs.dropped_at_end - std::min(rs.dropped_at_end, known_gaps);
      if (rs.dropped_at_end >= known_gaps && (initial < min_initial || initial > max_initial))
        rs.error("dropped() is %" PRIu64 ": the gaps add up to %" PRIu64 " plus a start gap of %" PRIu64
                 " that is not within [%" PRIu64 ", %" PRIu64 "]",
                 rs.dropped_at_end, known_gaps, initial, min_initial, max_initial);
    }
    // An aligned stream also drops (skips) without a lagged read, at its start.
    if (reached_end && (rs.dropped_at_end != 0) != (rs.lagged_total != 0) && !(rs.align && rs.lagged_total == 0))
      rs.error("dropped() is %" PRIu64 " with %" PRIu64 " lagged reads", rs.dropped_at_end, rs.lagged_total);
    // After an aligned stream's gap, what follows up to the end may be skipped.
    if (reached_end && rs.single_producer() && rs.lagged_at_end != 0 && !rs.align)
      rs.error("a lagged read just before the %s, but nothing after the last item was dropped", name(rs.end));
  }
  if (rs.lagged_repeats != 0)
    rs.error("%" PRIu64 " times a lagged read followed another with no item between (of %" PRIu64
             " lagged reads): each gap must come after exactly one lagged read",
             rs.lagged_repeats, rs.lagged_total);
  if (!lossy && rs.lagged_total > (rs.resume ? 1u : 0u))
    rs.error("%" PRIu64 " lagged reads on a %s stream", rs.lagged_total, name(rs.pol));

  // Section 7: the header first, from a generation set while the stream was made; every byte of
  // the writer's sequence from the stream's start delivered, dropped or skipped (position() ends
  // at the end of what was written).
  if (!ws.cfg.typed) {
    bool some_without = false;
    for (std::uint32_t g = rs.header_lo; g <= rs.header_hi; ++g) some_without = some_without || !generation_has_header(g);
    if (rs.header_seen < 0 && !some_without && (reached_end || rs.items != 0 || rs.lagged_total != 0))
      rs.error("no header, though generations %u..%u (each with one) were set while the stream was made", rs.header_lo,
               rs.header_hi);
  }
  if (rs.have_end_position && reached_end) {
    if (rs.end_position != rs.base + rs.data_bytes + rs.end_dropped)
      rs.error("position() is %" PRIu64 " at the end: not its start %" PRIu64 " + %" PRIu64 " bytes delivered + %" PRIu64
               " dropped",
               rs.end_position, rs.base, rs.data_bytes, rs.end_dropped);
    if (rs.end_position != ws.total_written())
      rs.error("position() is %" PRIu64 " at the end, but %" PRIu64 " bytes were written", rs.end_position,
               ws.total_written());
  }
}

writer_config random_writer(std::mt19937_64& rng) {
  writer_config c;
  c.typed = rng() % 2 == 0;
  c.pol = static_cast<policy>(rng() % 4);
  if (c.pol != policy::unbounded) c.limit = random_limit(rng, c.typed);
  // A writer whose own default does not hold it back may serve only streams that never do.
  c.viewers_only = c.pol != policy::wait && rng() % 3 == 0;
  if (rng() % 2 == 0) c.replay = c.typed ? pick<std::size_t>(rng, 1, 32) : pick<std::size_t>(rng, 64, 16384);
  c.producers = rng() % 3 == 0 ? 2 : 1;
  if (!c.typed) {
    c.headers = rng() % 2 == 0;
    c.syncs = rng() % 3 != 0;
  }
  const unsigned fate = static_cast<unsigned>(rng() % 10);
  c.destroy_mid_run = fate < 2;
  c.close_mid_run = fate >= 2 && fate < 4;
  c.keep_to_end = fate >= 4 && fate < 7;
  // Not timed_out (a monitor's own), nor eof or overflowed (the ends the readers tell apart).
  if (rng() % 2 == 0)
    c.reason = make_error_code(rng() % 2 == 0 ? asio::error::connection_reset : asio::error::connection_aborted);
  return c;
}

std::string describe(const writer_config& c) {
  char buf[300];
  std::snprintf(buf, sizeof buf, "%s %s limit %zu replay %zu x%d%s%s%s%s%s%s%s", c.typed ? "typed" : "bytes", name(c.pol),
                c.limit, c.replay, c.producers, c.headers ? ", headers" : "", c.syncs ? ", sync points" : "",
                c.viewers_only ? ", viewers only" : "",
                c.destroy_mid_run ? ", destroyed mid-run" : "", c.close_mid_run ? ", closed mid-run" : "",
                c.reason ? ", closed with " : "", c.reason ? c.reason.message().c_str() : "");
  return buf;
}

void dump_round(round_context& rc) {
  std::fprintf(stderr, "stress: round %d state:\n", rc.round);
  for (auto& w : rc.writers)
    std::fprintf(stderr, "  writer %u: %s; alive %d running %d\n", w->index, describe(w->cfg).c_str(),
                 w->alive() ? 1 : 0, w->producers_running.load());
  for (auto& r : rc.readers)
    if (!r->done.load())
      std::fprintf(stderr,
                   "  reader %d (writer %u, %s limit %zu%s%s%s): not done (%s); last op %s (%s), %" PRIu64
                   " items, %" PRIu64 " callback ops started, %" PRIu64 " completed, backlog %zu\n",
                   r->id, r->slot->index, name(r->pol), r->limit, r->replay ? ", replay" : "", r->monitor ? ", monitor" : "",
                   r->late ? ", late" : "", name(r->end), r->last_op, r->pending, r->items, r->initiated, r->completed,
                   r->backlog.load());
}

bool run_round(int round, std::uint64_t seed, double seconds, bool verbose) {
  std::mt19937_64 rng(mix(seed ^ (0x5bd1e995ull * static_cast<std::uint64_t>(round + 1))));
  round_context rc;
  rc.round = round;
  rc.seed = seed;
  const int threads = pick<int>(rng, 2, 4);
  const int nwriters = pick<int>(rng, 1, 3);
  const auto duration = std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(seconds));
  const std::size_t failures_before = failure_count();

  for (int i = 0; i < nwriters; ++i) {
    auto ws = std::make_unique<writer_slot>();
    ws->index = static_cast<std::uint32_t>(i);
    ws->cfg = random_writer(rng);
    bytecast::writer_options o;
    o.queue_limit = ws->cfg.limit;
    o.on_overflow = to_overflow(ws->cfg.pol);
    o.replay_limit = ws->cfg.replay;
    if (ws->cfg.typed)
      ws->tw = &ws->tw_storage.emplace(rc.ctx, o);
    else
      ws->bw = &ws->bw_storage.emplace(rc.ctx, o);
    std::vector<std::byte> scratch;
    if (ws->cfg.headers && rng() % 4 != 0) ws->set_header_generation(1, scratch, false);
    for (int p = 0; p < ws->cfg.producers; ++p) ws->producers.push_back(std::make_unique<producer_state>());
    rc.writers.push_back(std::move(ws));
  }
  if (verbose) {
    std::printf("round %d: %d io threads, %.2f s;", round, threads, seconds);
    for (auto& w : rc.writers) std::printf(" [%s]", describe(w->cfg).c_str());
    std::printf("\n");
  }

  // Readers that are there from the start.
  for (auto& w : rc.writers) {
    std::lock_guard lock(w->life);
    for (int k = pick<int>(rng, 1, 4); k > 0; --k) spawn_reader(rc, *w, rng, false);
  }

  auto guard = asio::make_work_guard(rc.ctx);
  std::vector<std::thread> io;
  for (int i = 0; i < threads; ++i) io.emplace_back([&rc] { rc.ctx.run(); });

  const auto start = steady::now();
  const auto end = start + duration;
  std::atomic<bool> stop{false};
  std::vector<std::thread> producers;
  std::vector<steady::time_point> close_at;
  for (auto& w : rc.writers) {
    const auto at =
        start + std::chrono::duration_cast<steady::duration>(duration * (0.2 + 0.6 * (rng() % 1000) / 1000.0));
    close_at.push_back(at);
    w->producers_running = w->cfg.producers;
    for (int p = 0; p < w->cfg.producers; ++p)
      producers.emplace_back(producer, std::ref(rc.ctx), std::ref(*w), static_cast<std::uint32_t>(p), mix(rng()),
                             std::cref(stop), at, p == 0);
  }

  churn_counts churned;
  std::thread churn_thread(churner, std::ref(rc), mix(rng()), std::cref(stop), std::ref(churned));

  // The controller: late joiners, mid-run closes.
  std::vector<bool> closed(rc.writers.size(), false);
  while (steady::now() < end) {
    std::this_thread::sleep_for(std::chrono::microseconds(pick<int>(rng, 500, 20000)));
    for (std::size_t i = 0; i < rc.writers.size(); ++i) {
      auto& w = *rc.writers[i];
      if (w.cfg.close_mid_run && !closed[i] && steady::now() >= close_at[i]) {
        std::lock_guard lock(w.life);
        w.close_locked();
        closed[i] = true;
        stats.writers_closed_mid.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (rng() % 3 == 0 && rc.readers.size() < 40) {
      auto& w = *rc.writers[rng() % rc.writers.size()];
      std::lock_guard lock(w.life);
      if (w.alive()) spawn_reader(rc, w, rng, true);
    }
  }

  // Stop the producers, then end every writer: destroyed, or closed and kept for the checks.
  stop = true;
  for (auto& t : producers) t.join();
  churn_thread.join();
  for (auto& w : rc.writers) {
    std::lock_guard lock(w->life);
    if (!w->alive()) continue;
    if (w->cfg.keep_to_end)
      w->close_locked();
    else
      w->destroy_locked();
  }

  // Every reader must finish: the writers are closed.
  const auto deadline = steady::now() + 60s;
  while (rc.readers_running.load() != 0) {
    if (steady::now() > deadline) {
      fail("round %d: %d readers did not finish within 60 s of the writers' close", round, rc.readers_running.load());
      dump_round(rc);
      std::fflush(stderr);
      std::_Exit(3);
    }
    std::this_thread::sleep_for(1ms);
  }

  // The writers kept to the end: no stream counted any more; every byte accounted for.
  for (auto& w : rc.writers) {
    std::lock_guard lock(w->life);
    if (!w->alive()) continue;
    std::uint64_t expected = 0;
    for (auto& p : w->producers) expected += w->cfg.typed ? p->next_seq.load() : p->prefix.back();
    const std::uint64_t written = w->cfg.typed ? w->tw->items_written() : w->bw->bytes_written();
    if (written != expected)
      fail("round %d writer %u: %s is %" PRIu64 ", the producers wrote %" PRIu64, round, w->index,
           w->cfg.typed ? "items_written()" : "bytes_written()", written, expected);
    const std::size_t count = w->cfg.typed ? w->tw->stream_count() : w->bw->stream_count();
    if (count != 0)
      fail("round %d writer %u: stream_count() is %zu after every stream was destroyed", round, w->index, count);
    if (w->cfg.typed ? w->tw->is_open() : w->bw->is_open())
      fail("round %d writer %u: open after close()", round, w->index);
    w->destroy_locked();
  }

  guard.reset();
  {
    // Everything is done: run() must return. A parked operation (or a leaked work count)
    // would keep it running.
    std::atomic<bool> joined{false};
    std::thread watchdog([&] {
      const auto until = steady::now() + 60s;
      while (!joined.load() && steady::now() < until) std::this_thread::sleep_for(10ms);
      if (!joined.load()) {
        fail(
            "round %d: io_context::run() did not return after every reader and writer finished "
            "(%" PRIu64 " of %" PRIu64 " reads of streams destroyed at once completed)",
            round, churned.completed.load(), churned.started.load());
        std::fflush(stderr);
        std::_Exit(3);
      }
    });
    for (auto& t : io) t.join();
    joined = true;
    watchdog.join();
  }

  if (churned.started.load() != churned.completed.load())
    fail("round %d: %" PRIu64 " of %" PRIu64 " reads of streams destroyed with the read pending never completed", round,
         churned.started.load() - churned.completed.load(), churned.started.load());
  for (auto& r : rc.readers) verify(*r);
  stats.rounds.fetch_add(1, std::memory_order_relaxed);
  const bool ok = failure_count() == failures_before;
  if (!ok) {
    std::fprintf(stderr, "stress: round %d failed; its set-up:", round);
    for (auto& w : rc.writers) std::fprintf(stderr, " [writer %u: %s]", w->index, describe(w->cfg).c_str());
    std::fprintf(stderr, "\n");
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t seed = 0;
  bool have_seed = false, verbose = false;
  double seconds = 10;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 0);
      have_seed = true;
    } else if (a == "--seconds" && i + 1 < argc) {
      seconds = std::strtod(argv[++i], nullptr);
    } else if (a == "--verbose") {
      verbose = true;
    } else {
      std::fprintf(stderr, "usage: %s [--seed N] [--seconds S] [--verbose]\n", argv[0]);
      return 2;
    }
  }
  if (!have_seed) seed = std::random_device{}() ^ (static_cast<std::uint64_t>(std::random_device{}()) << 32);
  std::printf("stress: seed %" PRIu64 " (rerun with --seed %" PRIu64 " --seconds %g)\n", seed, seed, seconds);
  std::fflush(stdout);

  std::mt19937_64 rng(seed);
  const auto start = steady::now();
  const auto total = std::chrono::duration<double>(seconds);
  int round = 0;
  int failed_rounds = 0;
  while (steady::now() - start < total) {
    const double left = (total - (steady::now() - start)).count();
    const double len = std::min(left, 0.2 + static_cast<double>(rng() % 1300) / 1000.0);
    if (!run_round(round, seed, std::max(len, 0.05), verbose)) ++failed_rounds;
    ++round;
    if (failure_count() >= 200) break;
  }
  const double took = std::chrono::duration<double>(steady::now() - start).count();
  std::printf("stress: %" PRIu64 " rounds in %.1f s: %" PRIu64 " writes (%" PRIu64 " would_block, %" PRIu64
              " cancelled, %" PRIu64 " empty), %" PRIu64 " items / %" PRIu64 " bytes read; %" PRIu64 " lagged (%" PRIu64
              " right after another), %" PRIu64 " overflowed, %" PRIu64 " sentinels, %" PRIu64 " close reasons; %" PRIu64
              " slot cancels, %" PRIu64
              " || timer wins, %" PRIu64 " monitor timeouts, %" PRIu64 " already_started probes; %" PRIu64
              " callback ops; streams: %" PRIu64 " dropped, %" PRIu64 " dropped with a read pending (%" PRIu64
              " of them from another thread), %" PRIu64 " late, %" PRIu64 " replay, %" PRIu64 " with their own options, %" PRIu64
              " monitored, %" PRIu64 " made, read and destroyed at once; writers: %" PRIu64 " closed and %" PRIu64
              " destroyed mid-run, %" PRIu64 " closed with a reason, %" PRIu64 " writes to viewers-only writers; %" PRIu64
              " waits for streams (%" PRIu64 " met, %" PRIu64 " cancelled); section 7: %" PRIu64 " headers set, %" PRIu64
              " read, %" PRIu64 " sync-point writes, %" PRIu64 " aligned streams, %" PRIu64 " resumed (%" PRIu64
              " older than the window), %" PRIu64 " refused options, %" PRIu64 " position checks\n",
              stats.rounds.load(), took, stats.writes.load(), stats.write_would_block.load(),
              stats.write_cancelled.load(), stats.empty_writes.load(), stats.items_read.load(), stats.bytes_read.load(),
              stats.lagged.load(), stats.multi_lagged.load(), stats.overflowed.load(), stats.sentinels.load(),
              stats.reasons.load(), stats.cancels.load(), stats.or_timer_won.load(), stats.monitor_timeouts.load(),
              stats.already_started.load(), stats.callback_ops.load(), stats.dropped_streams.load(),
              stats.dropped_pending.load() + stats.dropped_elsewhere.load(), stats.dropped_elsewhere.load(),
              stats.late_joiners.load(), stats.replay_streams.load(), stats.own_options.load(), stats.monitors.load(),
              stats.churned.load(), stats.writers_closed_mid.load(), stats.writers_destroyed_mid.load(),
              stats.closed_with_reason.load(), stats.viewer_only_writes.load(), stats.stream_waits.load(),
              stats.stream_waits_met.load(), stats.stream_waits_cancelled.load(), stats.headers_set.load(),
              stats.headers_read.load(), stats.sync_writes.load(), stats.aligned_streams.load(),
              stats.resumed_streams.load(), stats.resumed_lagged.load(), stats.invalid_options.load(),
              stats.position_checks.load());
  const std::size_t n = failure_count();
  if (n != 0) {
    std::printf("stress: FAILED: %zu failures in %d of %d rounds (seed %" PRIu64 ")\n", n, failed_rounds, round, seed);
    return 1;
  }
  std::printf("stress: passed (seed %" PRIu64 ")\n", seed);
  return 0;
}
