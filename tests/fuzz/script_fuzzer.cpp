// A libFuzzer target that reads its input as a script of operations on one byte_writer and up
// to four streams, and checks every result against a model (issue 6, item 2; per-stream options,
// close reasons and waits for streams: issue 13, API.md section 6; positions, headers and sync
// points: issue 14, API.md section 7).
//
// The io_context is single-threaded and driven with poll() after every operation, so a script
// always runs the same way, and at every operation boundary every completion that can happen has
// happened. The model is what the API promises, made exact:
//   - each stream's bytes are the concatenation of the writes delivered to it since it joined
//     (after the replayed chunks for a replaying stream), whole chunks for async_next /
//     async_next_chunk / try_next, any 1..n bytes from the front for async_read_some;
//   - then one sentinel (eof for async_read_some), then eof; a zero-size read gives 0 at once;
//     after close(reason), every read after the backlog gives the reason instead (every read
//     form, streams made later too; only the first close counts; close({}) is close());
//   - each stream has its own limit and policy (its stream_options over the writer's options; a
//     limit of 0 is unbounded whatever the policy). A bounded stream is full for a chunk of w bytes
//     when its queue is not empty and queue + w > its limit, where "queue" is what the writer can
//     still see: a chunk that a reader has started to consume with async_read_some is no longer
//     the writer's (it can be neither dropped nor counted against the limit; queued_bytes() still
//     counts its rest);
//     wait: only these streams hold writes back: a synchronous write while one is full (or with
//     async writes waiting) fails with would_block and delivers nothing; an async_write waits
//     (FIFO) until none is full, checked whenever a reader takes a chunk or a stream goes away;
//     cancelled: aborted, delivered to nobody; closed: broken_pipe, delivered to nobody;
//     drop_oldest: the full stream drops its oldest whole chunks until the new one fits; its
//     next read (at a chunk boundary) completes once with lagged, then continues with what it
//     still holds (drops between that lagged read and the next chunk need no second lagged);
//     dropped() adds up;
//     disconnect: the full stream keeps what it has, then reads overflowed forever, and is no
//     longer counted;
//   - replay keeps the newest whole chunks that fit in replay_limit; a replaying stream gets them
//     whatever its limit, which applies from the next write;
//   - a stream is live (stream_count()) from its creation on an open writer until it is destroyed
//     or cut off, at once; async_wait_for_streams(n) completes once at least n streams are live,
//     async_wait_no_streams() once none is (also when that holds already), both with broken_pipe
//     once the writer is closed, operation_aborted when cancelled;
//   - every operation completes exactly once, never inside a call into the library; a second read
//     while one is pending gets already_started; a cancelled read gets operation_aborted and
//     takes nothing; a stream destroyed with a read pending completes it with operation_aborted;
//   - a read stays pending only while the model has nothing for it (no lost wake-ups);
//   - position() is the writer's position of the next byte the stream reads (API.md section 7):
//     each chunk delivered keeps the position it was written at; with nothing queued, the
//     position after the last chunk delivered, dropped or skipped;
//   - a stream made after set_header gets that header first, whole or in parts, before a lagged
//     gap or anything else; it is outside positions, limits and the replay window, and counted in
//     queued_chunks() / queued_bytes(); clear_header() ends it for new streams; header() is it;
//   - a stream aligned to sync points skips (counted in dropped() and position(), never queued)
//     whatever is written before the next sync point: live from its creation, and after each
//     drop_oldest gap (the gap goes on up to the next queued sync point); aligned with replay it
//     starts at the newest retained sync point (none: as live);
//   - from_position p: inside the replay window, the retained bytes from p (the tail of the chunk
//     holding p first); older, lagged with dropped() = the bytes missed, then all retained; ahead
//     of bytes_written(), or combined with alignment: stream() throws invalid_argument and makes no
//     stream;
//   - queued_chunks(), queued_bytes(), dropped(), position(), bytes_written(), is_open(), stream_count()
//     agree with the model after every operation.
//
// Input: byte 0 picks the writer's options (policy, queue_limit, replay_limit); then each
// operation is an opcode byte followed by its argument bytes (see run() and make_corpus.py). Any
// byte string is a valid script; the run stops where the input ends, then closes the writer and
// drains every stream through the model.
//
// Built as a libFuzzer target with clang (BYTECAST_FUZZ=ON), and as a plain executable that
// replays files and directories given on its command line (bytecast_fuzz_replay, in the normal
// test suite with the checked-in corpus).
#include "../backend.hpp" // bytecast, then the Asio backend's headers and a global `asio`

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

[[noreturn, gnu::format(printf, 1, 2)]] void fuzz_fail(const char* fmt, ...) {
  std::fprintf(stderr, "script_fuzzer: model mismatch: ");
  va_list args;
  va_start(args, fmt);
  std::vfprintf(stderr, fmt, args);
  va_end(args);
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  std::abort();
}

#define FUZZ_CHECK(cond, ...)            \
  do {                                   \
    if (!(cond)) fuzz_fail(__VA_ARGS__); \
  } while (0)

using bytes = std::vector<std::byte>;

// A chunk as the model keeps it: its bytes, and whether it was written with sync_point.
struct model_chunk : bytes {
  using bytes::bytes;
  bool sync = false;
};
using chunk_ptr = std::shared_ptr<const model_chunk>;

enum class policy { unbounded, wait, drop_oldest, disconnect };

policy to_policy(bytecast::overflow_policy p) {
  switch (p) {
    case bytecast::overflow_policy::wait:
      return policy::wait;
    case bytecast::overflow_policy::drop_oldest:
      return policy::drop_oldest;
    case bytecast::overflow_policy::disconnect:
      return policy::disconnect;
  }
  return policy::wait;
}

constexpr std::size_t stream_slots = 4;

// The queue limits a script can pick (the writer's, and a stream's by index).
constexpr std::size_t limit_table[8] = {1, 5, 16, 40, 100, 256, 1000, 4096};

constexpr asio::cancellation_type cancellation_types[4] = {
    asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total,
    asio::cancellation_type::none};

std::string ec_name(bytecast::error_code ec) {
  return ec ? std::string(ec.category().name()) + ":" + ec.message() : std::string("success");
}

// The reasons a script can close the writer with; the first is none: close({}) is close().
bytecast::error_code close_reason(unsigned i) {
  switch (i % 5) {
    case 1:
      return make_error_code(asio::error::connection_reset);
    case 2:
      return make_error_code(asio::error::timed_out);
    case 3:
      return make_error_code(asio::error::eof);  // eof as a reason: no sentinel before it
    case 4:
      return bytecast::error::overflowed;  // bytecast's own category, as a cut-off stream reads
    default:
      return {};
  }
}

// The script's input.
class script {
 public:
  script(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  [[nodiscard]] bool done() const { return pos_ >= size_; }
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// One stream as the model sees it.
struct model_stream {
  int gen = 0;                   // the writer generation it belongs to
  std::deque<chunk_ptr> queue;   // delivered, not yet consumed (the front maybe in part)
  std::deque<std::uint64_t> starts;  // the writer's position of each chunk of `queue`
  std::size_t offset = 0;        // bytes of queue.front() already read
  bool lagged = false;           // a drop to report: the next read at a chunk boundary is lagged
  bool lagged_reported = false;  // lagged was reported and no chunk was read since
  std::uint64_t dropped = 0;
  enum class end_state { open, closed, finished, cut } end = end_state::open;
  bytecast::error_code reason;  // closed: what every read after the backlog gives (none: the sentinel)
  bool counted = true;          // in the writer's list (stream_count)
  bool replayed = false;        // preloaded by its replay: may start over the limit
  policy pol = policy::unbounded;  // its own (the writer's where its options leave it unset)
  std::size_t limit = 0;           // 0 for unbounded
  std::uint64_t end_pos = 0;       // the writer's position after the last chunk delivered or dropped here
  bool header_front = false;       // queue.front() is the header: outside positions and limits
  bool align = false;              // align_to_sync_points
  bool skipping = false;           // aligned and waiting for a sync point: what comes is skipped

  // position() (API.md section 7): where the next byte read comes from in the writer's sequence
  // (the header is not in it).
  [[nodiscard]] std::uint64_t position() const {
    const std::size_t first = header_front ? 1 : 0;
    if (queue.size() == first) return end_pos;
    return starts[first] + (first == 0 ? offset : 0);
  }
  void push(const chunk_ptr& c) {
    queue.push_back(c);
    starts.push_back(end_pos);
    end_pos += c->size();
  }
  // The header: first, and it moves no position.
  void push_header(const chunk_ptr& c) {
    queue.push_back(c);
    starts.push_back(end_pos);
    header_front = true;
  }
  void pop() {
    queue.pop_front();
    starts.pop_front();
    header_front = false;
  }
  // Queued chunks the writer no longer sees: the header, and a chunk a reader has started on.
  [[nodiscard]] std::size_t hidden() const { return header_front || offset > 0 ? 1 : 0; }

  // Weight the writer still sees: everything but the header and a chunk a reader has started on.
  [[nodiscard]] std::size_t writer_weight() const {
    std::size_t w = 0;
    for (std::size_t i = hidden(); i < queue.size(); ++i) w += queue[i]->size();
    return w;
  }
  [[nodiscard]] std::size_t writer_chunks() const { return queue.size() - hidden(); }
  // Drops the oldest chunk the writer sees (drop_oldest, and an aligned stream's gap).
  void drop_first_visible() {
    const auto i = static_cast<std::ptrdiff_t>(hidden());
    dropped += queue[hidden()]->size();
    queue.erase(queue.begin() + i);
    starts.erase(starts.begin() + i);
  }
  // While waiting for a sync point: true if `c` is one (the wait ends); otherwise it is skipped.
  bool skip_unless_sync(const chunk_ptr& c) {
    if (c->sync) {
      skipping = false;
      return true;
    }
    dropped += c->size();
    end_pos += c->size();
    return false;
  }
  [[nodiscard]] std::size_t remaining_bytes() const {
    std::size_t w = 0;
    for (auto& c : queue) w += c->size();
    return w - offset;
  }
  // Something a read would report now.
  [[nodiscard]] bool has_news() const { return !queue.empty() || lagged || end != end_state::open; }
};

enum class read_kind : std::uint8_t { next, next_chunk, read_some, read_some_two, read_zero };

const char* name(read_kind k) {
  switch (k) {
    case read_kind::next:
      return "async_next";
    case read_kind::next_chunk:
      return "async_next_chunk";
    case read_kind::read_some:
      return "async_read_some";
    case read_kind::read_some_two:
      return "async_read_some(two buffers)";
    case read_kind::read_zero:
      return "async_read_some(zero-size)";
  }
  return "?";
}

struct pending_read {
  int id = 0;
  read_kind kind = read_kind::next;
  std::size_t buffer_size = 0;
  std::size_t split = 0;  // read_some_two: size of the first buffer
  bool has_slot = false;
  bool cancelled = false;    // a matching cancellation was emitted
  bool stream_gone = false;  // its stream was destroyed
  std::unique_ptr<std::byte[]> buffer;
};

struct stream_slot {
  std::optional<bytecast::byte_stream> s;
  model_stream m;
  std::unique_ptr<pending_read> op;  // the outstanding read, if any
  asio::cancellation_signal signal;
};

// What the model expects of an asynchronous writer operation (a write, a wait for streams).
enum class outcome { parked, success, aborted, broken_pipe };

bytecast::error_code expected_ec(outcome o) {
  switch (o) {
    case outcome::aborted:
      return asio::error::operation_aborted;
    case outcome::broken_pipe:
      return asio::error::broken_pipe;
    default:
      return {};
  }
}

struct pending_write {
  int id = 0;
  chunk_ptr data;
  int gen = 0;
  outcome expected = outcome::success;
  bool has_slot = false;
  bool done = false;
  asio::cancellation_signal signal;
};

// async_wait_for_streams(n), or (for_none) async_wait_no_streams().
struct pending_wait {
  int id = 0;
  bool for_none = false;
  std::size_t n = 0;
  outcome expected = outcome::parked;
  bool has_slot = false;
  bool done = false;
  asio::cancellation_signal signal;

  [[nodiscard]] bool satisfied_by(std::size_t live) const { return for_none ? live == 0 : live >= n; }
  [[nodiscard]] std::string what() const {
    return for_none ? "async_wait_no_streams" : "async_wait_for_streams(" + std::to_string(n) + ")";
  }
};

class fuzz_run {
 public:
  explicit fuzz_run(std::uint8_t config) {
    const auto pol = static_cast<policy>(config & 3);
    static constexpr std::size_t replays[8] = {0, 0, 0, 1, 20, 100, 500, 4096};
    opts_.queue_limit = pol == policy::unbounded ? 0 : limit_table[(config >> 2) & 7];
    opts_.on_overflow = pol == policy::drop_oldest  ? bytecast::overflow_policy::drop_oldest
                        : pol == policy::disconnect ? bytecast::overflow_policy::disconnect
                                                    : bytecast::overflow_policy::wait;
    opts_.replay_limit = replays[(config >> 5) & 7];
    writer_.emplace(ctx_, opts_);
  }

  ~fuzz_run() = default;

  void run(script& in) {
    while (!in.done()) {
      const std::uint8_t op = in.byte();
      switch (op % 16) {
        case 0:
        case 1:
        case 2:
          write(in);
          break;
        case 3:
        case 4:
        case 5:
          read(in, false);
          break;
        case 6:
          try_next(in.byte() % stream_slots);
          break;
        case 7:
          cancel_read(in);
          break;
        case 8:
          new_stream(in);
          break;
        case 9:
          drop_stream(in.byte() % stream_slots);
          break;
        case 10:
          close();
          break;
        case 11:
          cancel_write(in);
          break;
        case 12:
          writer_op(in.byte());
          break;
        case 13:
          read(in, true);  // a second read while one is pending (a plain read otherwise)
          break;
        case 14:
          empty_write(in);
          break;
        case 15:
          section7(in);
          break;
      }
      settle();
    }
    finish();
  }

 private:
  // ------------------------------------------------------------------------------------------
  // The writer model
  // ------------------------------------------------------------------------------------------

  // Marks a call into the library: no completion handler may run inside it.
  class library_call {
   public:
    explicit library_call(fuzz_run& r) : flag_(r.initiating_), was_(std::exchange(flag_, true)) {}
    library_call(const library_call&) = delete;
    library_call& operator=(const library_call&) = delete;
    ~library_call() { flag_ = was_; }

   private:
    bool& flag_;
    bool was_;
  };

  [[nodiscard]] bool live(const stream_slot& sl) const {
    return sl.s && sl.m.gen == gen_ && sl.m.counted && sl.m.end != model_stream::end_state::cut;
  }

  [[nodiscard]] std::size_t live_count() const {
    std::size_t n = 0;
    for (auto& sl : slots_) n += live(sl) ? 1 : 0;
    return n;
  }

  [[nodiscard]] static bool full(const model_stream& m, std::size_t w) {
    return m.pol != policy::unbounded && m.writer_chunks() != 0 && m.writer_weight() + w > m.limit;
  }

  // Only bounded wait streams hold writes back.
  [[nodiscard]] bool any_full(std::size_t w) const {
    for (auto& sl : slots_)
      if (live(sl) && sl.m.pol == policy::wait && full(sl.m, w)) return true;
    return false;
  }

  [[nodiscard]] bool must_wait(std::size_t w) const { return !parked_.empty() || any_full(w); }

  // Delivers one chunk to every live stream, as each one's policy says; keeps it for replay.
  void deliver(const chunk_ptr& c) {
    const std::size_t w = c->size();
    for (auto& sl : slots_) {
      if (!live(sl)) continue;
      model_stream& m = sl.m;
      // An aligned stream waiting for a sync point skips everything else.
      if (m.skipping && !m.skip_unless_sync(c)) continue;
      if (full(m, w)) {
        if (m.pol == policy::disconnect) {
          m.end = model_stream::end_state::cut;
          m.counted = false;
          continue;
        }
        if (m.pol == policy::drop_oldest) {
          while (m.writer_chunks() != 0 && m.writer_weight() + w > m.limit) m.drop_first_visible();
          // Aligned: the read after the gap returns a sync point, so the gap goes on to the next
          // one queued, or to the next one written (this one, if it is one).
          if (m.align) {
            while (m.writer_chunks() != 0 && !m.queue[m.hidden()]->sync) m.drop_first_visible();
            if (m.writer_chunks() == 0) m.skipping = true;
          }
          // "The next read completes once with lagged, then continues with what it still
          // holds": drops after a lagged read and before the next chunk are part of the same
          // gap, already reported.
          if (!m.lagged_reported) m.lagged = true;
          if (m.skipping && !m.skip_unless_sync(c)) continue;
        }
      }
      m.push(c);
    }
    if (opts_.replay_limit != 0) {
      replay_.push_back(c);
      replay_weight_ += w;
      while (!replay_.empty() && replay_weight_ > opts_.replay_limit) {
        replay_weight_ -= replay_.front()->size();
        replay_.pop_front();
      }
    }
    written_ += w;
    update_waits();  // streams may have been cut off
  }

  // The live streams changed (`live` of them now): the waits for streams this satisfies complete.
  void update_waits(std::size_t live) {
    for (auto& w : waits_)
      if (w->expected == outcome::parked && w->satisfied_by(live)) w->expected = outcome::success;
  }
  void update_waits() { update_waits(live_count()); }

  // A reader took a chunk the writer could see, or a stream went away: waiting writes that now
  // fit are delivered, oldest first.
  void on_space() {
    while (!parked_.empty() && !any_full(parked_.front()->data->size())) {
      pending_write* w = parked_.front();
      parked_.pop_front();
      deliver(w->data);
      w->expected = outcome::success;
    }
  }

  chunk_ptr make_chunk(std::size_t size) {
    auto b = std::make_shared<model_chunk>(size);
    for (std::size_t i = 0; i < size; ++i)
      (*b)[i] = static_cast<std::byte>((write_counter_ * 131u + i * 7u + (i >> 8) + 1u) & 0xffu);
    ++write_counter_;
    return b;
  }

  // ------------------------------------------------------------------------------------------
  // Operations
  // ------------------------------------------------------------------------------------------

  void write(script& in) {
    std::size_t size = in.byte();
    if (size >= 250) size = 250 + static_cast<std::size_t>(in.byte()) * 16;  // up to ~4 KiB
    const std::uint8_t how = in.byte();
    const chunk_ptr c = make_chunk(size);
    const auto data = std::span<const std::byte>(*c);
    auto& w = *writer_;
    switch (how % 8) {
      case 0:
      case 1:
      case 2:
      case 3: {
        bytecast::error_code ec;
        std::size_t n = 0;
        // asio::write never calls write_some for an empty buffer sequence: no error then.
        const bytecast::error_code expected = how % 4 == 3 && size == 0 ? bytecast::error_code() : expected_sync(c);
        const library_call call(*this);
        switch (how % 4) {
          case 0:
            n = w.write(data, ec);
            break;
          case 1:
            try {
              n = w.write(data);
            } catch (const bytecast::system_error& e) {
              ec = e.code();
            }
            break;
          case 2: {
            const std::size_t split = size == 0 ? 0 : (how / 8) % (size + 1);
            std::array<asio::const_buffer, 2> bufs{asio::buffer(c->data(), split),
                                                   asio::buffer(c->data() + split, size - split)};
            n = w.write_some(bufs, ec);
            break;
          }
          default:
            try {
              n = asio::write(w, asio::buffer(*c));
            } catch (const bytecast::system_error& e) {
              ec = e.code();
            }
            break;
        }
        FUZZ_CHECK(ec == expected, "sync write of %zu bytes: got %s, expected %s", size, ec_name(ec).c_str(),
                   ec_name(expected).c_str());
        FUZZ_CHECK(n == (ec ? 0 : size), "sync write of %zu bytes returned %zu", size, n);
        if (!ec && size != 0) deliver(c);
        break;
      }
      default:
        async_write(c, how);
        break;
    }
  }

  // What a synchronous write of `c` must report now.
  [[nodiscard]] bytecast::error_code expected_sync(const chunk_ptr& c) const {
    if (!open_) return asio::error::broken_pipe;
    if (c->empty()) return {};
    if (must_wait(c->size())) return asio::error::would_block;
    return {};
  }

  void async_write(const chunk_ptr& c, std::uint8_t how, bool sync = false) {
    auto pw = std::make_unique<pending_write>();
    pw->id = ++next_id_;
    pw->data = c;
    pw->gen = gen_;
    pw->has_slot = (how & 16) != 0;
    if (!open_) {
      pw->expected = outcome::broken_pipe;
    } else if (c->empty()) {
      pw->expected = outcome::success;
    } else if (must_wait(c->size())) {
      pw->expected = outcome::parked;
    } else {
      pw->expected = outcome::success;
    }
    pending_write* p = pw.get();
    auto handler = [this, p](bytecast::error_code ec, std::size_t n) { on_write_complete(p, ec, n); };
    ++started_;
    initiating_ = true;
    const int form = (how / 32) % 3;
    if (sync) {
      if (p->has_slot)
        writer_->async_write(asio::buffer(*c), bytecast::sync_point, asio::bind_cancellation_slot(p->signal.slot(), handler));
      else
        writer_->async_write(asio::buffer(*c), bytecast::sync_point, handler);
    } else if (p->has_slot) {
      auto h = asio::bind_cancellation_slot(p->signal.slot(), handler);
      if (form == 0)
        writer_->async_write(asio::buffer(*c), h);
      else if (form == 1)
        writer_->async_write_some(asio::buffer(*c), h);
      else
        asio::async_write(*writer_, asio::buffer(*c), h);
    } else {
      if (form == 0)
        writer_->async_write(asio::buffer(*c), handler);
      else if (form == 1)
        writer_->async_write_some(asio::buffer(*c), handler);
      else
        asio::async_write(*writer_, asio::buffer(*c), handler);
    }
    initiating_ = false;
    if (p->expected == outcome::parked)
      parked_.push_back(p);
    else if (p->expected == outcome::success && !c->empty())
      deliver(c);
    writes_.push_back(std::move(pw));
  }

  void on_write_complete(pending_write* p, bytecast::error_code ec, std::size_t n) {
    FUZZ_CHECK(!initiating_, "write %d completed inside a call into the library", p->id);
    FUZZ_CHECK(!p->done, "write %d completed twice", p->id);
    p->done = true;
    ++completed_;
    FUZZ_CHECK(p->expected != outcome::parked,
               "write %d of %zu bytes completed with %s while the model has it waiting for room", p->id,
               p->data->size(), ec_name(ec).c_str());
    const bytecast::error_code expected = expected_ec(p->expected);
    FUZZ_CHECK(ec == expected, "write %d of %zu bytes completed with %s, expected %s", p->id, p->data->size(),
               ec_name(ec).c_str(), ec_name(expected).c_str());
    FUZZ_CHECK(n == (ec ? 0 : p->data->size()), "write %d of %zu bytes completed with n = %zu", p->id, p->data->size(),
               n);
  }

  // Opcode 15: API.md section 7, by the argument's low two bits (r = the argument >> 2):
  //   0: a write with sync_point: size (as write()), then the form r % 4: write(span, tag, ec),
  //      write(span, tag), write(string_view, tag), async_write(buffers, tag, token) (r & 4: bound
  //      to a cancellation slot);
  //   1: r & 1: clear_header(); otherwise set_header of 1 + r bytes (r & 2: the string_view form);
  //   2: a stream aligned to sync points: as opcode 8, with align_to_sync_points;
  //   3: a stream from a position: as opcode 8, with from_position = bytes_written() - the next
  //      byte (clamped at 0), or, with r & 16, bytes_written() + 1 + the next byte (refused); with
  //      r & 32 also align_to_sync_points (refused).
  void section7(script& in) {
    const std::uint8_t arg = in.byte();
    const unsigned r = arg >> 2;
    switch (arg % 4) {
      case 0:
        sync_write(in, r);
        break;
      case 1:
        header_op(r);
        break;
      case 2: {
        const std::uint8_t b = in.byte();
        bytecast::stream_options o = read_options(b, in);
        o.align_to_sync_points = true;
        make_stream(b, o);
        break;
      }
      default: {
        const std::uint8_t b = in.byte();
        bytecast::stream_options o = read_options(b, in);
        const std::uint64_t back = in.byte();
        o.from_position = (r & 16) != 0 ? written_ + 1 + back : written_ - std::min(written_, back);
        o.align_to_sync_points = (r & 32) != 0;
        make_stream(b, o);
        break;
      }
    }
  }

  void sync_write(script& in, unsigned r) {
    std::size_t size = in.byte();
    if (size >= 250) size = 250 + static_cast<std::size_t>(in.byte()) * 16;
    auto c = std::make_shared<model_chunk>(*make_chunk(size));
    c->sync = true;
    const auto data = std::span<const std::byte>(*c);
    auto& w = *writer_;
    if (r % 4 == 3) return async_write(c, static_cast<std::uint8_t>((r & 4) != 0 ? 16 : 0), true);
    bytecast::error_code ec;
    std::size_t n = 0;
    const bytecast::error_code expected = expected_sync(c);
    {
      const library_call call(*this);
      try {
        if (r % 4 == 0)
          n = w.write(data, bytecast::sync_point, ec);
        else if (r % 4 == 1)
          n = w.write(data, bytecast::sync_point);
        else
          n = w.write(std::string_view(reinterpret_cast<const char*>(c->data()), c->size()), bytecast::sync_point);
      } catch (const bytecast::system_error& e) {
        ec = e.code();
      }
    }
    FUZZ_CHECK(ec == expected, "write of %zu bytes with sync_point: got %s, expected %s", size, ec_name(ec).c_str(),
               ec_name(expected).c_str());
    FUZZ_CHECK(n == (ec ? 0 : size), "write of %zu bytes with sync_point returned %zu", size, n);
    if (!ec && size != 0) deliver(c);
  }

  // set_header / clear_header; header() gives what was set.
  void header_op(unsigned r) {
    {
      const library_call call(*this);
      if ((r & 1) != 0) {
        writer_->clear_header();
        header_ = nullptr;
      } else {
        header_ = make_chunk(1 + r);
        if ((r & 2) != 0)
          writer_->set_header(std::string_view(reinterpret_cast<const char*>(header_->data()), header_->size()));
        else
          writer_->set_header(std::span<const std::byte>(*header_));
      }
    }
    const bytecast::chunk h = writer_->header();
    FUZZ_CHECK(header_ ? std::ranges::equal(h.bytes(), *header_) : h.empty(), "header() is %zu bytes, model %zu",
               h.size(), header_ ? header_->size() : std::size_t{0});
  }

  void empty_write(script& in) {
    const std::uint8_t how = in.byte();
    async_write(make_chunk(0), how);
  }

  void cancel_write(script& in) {
    const std::uint8_t k = in.byte();
    std::vector<pending_write*> cancellable;
    for (auto& w : writes_)
      if (!w->done && w->has_slot) cancellable.push_back(w.get());
    if (cancellable.empty()) return;
    pending_write* p = cancellable[k % cancellable.size()];
    // Only a write still waiting can be withdrawn; after poll() every other one has completed.
    FUZZ_CHECK(p->expected == outcome::parked, "write %d is pending but not waiting", p->id);
    for (auto it = parked_.begin(); it != parked_.end(); ++it)
      if (*it == p) {
        parked_.erase(it);
        break;
      }
    p->expected = outcome::aborted;
    {
      const library_call call(*this);
      p->signal.emit(asio::cancellation_type::terminal);
    }
    // The write behind it may fit now (it was waiting in line, not for room).
    on_space();
  }

  void close() {
    {
      const library_call call(*this);
      writer_->close();
    }
    model_close({});
  }

  void close_with_reason(unsigned i) {
    const bytecast::error_code reason = close_reason(i);
    {
      const library_call call(*this);
      writer_->close(reason);  // close({}) for the first reason
    }
    model_close(reason);
  }

  // Only the first close counts.
  void model_close(bytecast::error_code reason) {
    if (!open_) return;
    open_ = false;
    close_reason_ = reason;
    for (auto& sl : slots_)
      if (live(sl) && sl.m.end == model_stream::end_state::open) {
        sl.m.end = model_stream::end_state::closed;
        sl.m.reason = reason;
      }
    for (pending_write* p : parked_) p->expected = outcome::broken_pipe;
    parked_.clear();
    for (auto& w : waits_)
      if (w->expected == outcome::parked) w->expected = outcome::broken_pipe;
  }

  void reset_writer() {
    // Move-assigning closes the old writer; its streams keep what they have, then the sentinel
    // (or the reason it was closed with before).
    model_close({});
    {
      const library_call call(*this);
      writer_ = bytecast::byte_writer(ctx_, opts_);
    }
    ++gen_;
    open_ = true;
    close_reason_ = {};
    replay_.clear();
    replay_weight_ = 0;
    written_ = 0;
    header_ = nullptr;
  }

  // Opcode 12: the rarer operations on the writer, by the argument's low two bits.
  void writer_op(std::uint8_t b) {
    const unsigned rest = b >> 2;
    switch (b % 4) {
      case 0:
        reset_writer();  // it ends all the streams' story
        break;
      case 1:
        close_with_reason(rest);
        break;
      case 2:
        start_wait(rest);
        break;
      default:
        cancel_wait(rest);
        break;
    }
  }

  // A new stream's options from its argument byte `b` (bit 2: replay) and, for some limits, the
  // next byte: bits 4-5 the policy (unset, wait, drop_oldest, disconnect), bits 6-7 the limit
  // (unset; 0; 1 + the next byte; limit_table[the next byte % 8]).
  static bytecast::stream_options read_options(std::uint8_t b, script& in) {
    static constexpr bytecast::overflow_policy policies[3] = {
        bytecast::overflow_policy::wait, bytecast::overflow_policy::drop_oldest, bytecast::overflow_policy::disconnect};
    bytecast::stream_options o;
    o.replay = (b & 4) != 0;
    if (const unsigned p = (b >> 4) & 3; p != 0) o.on_overflow = policies[p - 1];
    switch (b >> 6) {
      case 1:
        o.queue_limit = 0;
        break;
      case 2:
        o.queue_limit = 1 + std::size_t{in.byte()};
        break;
      case 3:
        o.queue_limit = limit_table[in.byte() % 8];
        break;
      default:
        break;
    }
    return o;
  }

  // A stream of the writer, spelt stream() or stream(replay) when it leaves its limit and policy
  // to the writer, stream(options) otherwise.
  bytecast::byte_stream subscribe(const bytecast::stream_options& o) {
    const library_call call(*this);
    if (!o.queue_limit && !o.on_overflow && !o.from_position && !o.align_to_sync_points)
      return o.replay ? writer_->stream(bytecast::replay) : writer_->stream();
    return writer_->stream(o);
  }

  // The model of a stream made now with `o` (which stream() accepted): the header, then from a
  // position, the replay (from its newest sync point when aligned), or live.
  [[nodiscard]] model_stream fresh_model(const bytecast::stream_options& o) const {
    model_stream m;
    m.gen = gen_;
    m.limit = o.queue_limit.value_or(opts_.queue_limit);
    m.pol = m.limit == 0 ? policy::unbounded : to_policy(o.on_overflow.value_or(opts_.on_overflow));
    m.replayed = o.replay || o.from_position.has_value();
    m.align = o.align_to_sync_points;
    if (header_) m.push_header(header_);
    const std::uint64_t oldest = written_ - replay_weight_;  // the replay window: [oldest, written_]
    m.end_pos = oldest;
    if (o.from_position) {
      const std::uint64_t p = *o.from_position;
      if (p < oldest) {  // older than the window: a gap, reported as lagged; then all it holds
        m.dropped = oldest - p;
        m.lagged = true;
        for (auto& c : replay_) m.push(c);
      } else {
        for (auto& c : replay_) {
          if (m.end_pos + c->size() <= p) {
            m.end_pos += c->size();
          } else if (m.end_pos < p) {  // p is inside this chunk: its tail
            const auto off = static_cast<std::ptrdiff_t>(p - m.end_pos);
            auto tail = std::make_shared<model_chunk>(c->begin() + off, c->end());
            m.queue.push_back(tail);
            m.starts.push_back(p);
            m.end_pos += c->size();
          } else {
            m.push(c);
          }
        }
      }
    } else if (o.replay) {
      std::size_t first = 0;
      if (m.align) {
        first = replay_.size();
        for (std::size_t i = replay_.size(); i-- > 0;)
          if (replay_[i]->sync) {
            first = i;
            break;
          }
        m.skipping = first == replay_.size();  // none retained: as live
      }
      for (std::size_t i = 0; i < replay_.size(); ++i) {
        if (i < first)
          m.end_pos += replay_[i]->size();
        else
          m.push(replay_[i]);
      }
    } else {
      m.skipping = m.align;
    }
    m.end_pos = written_;
    if (!open_) {
      m.end = model_stream::end_state::closed;
      m.reason = close_reason_;
      m.counted = false;
    }
    return m;
  }

  void new_stream(script& in) {
    const std::uint8_t b = in.byte();
    make_stream(b, read_options(b, in));
  }

  // stream() refuses a position ahead of bytes_written(), and a position with alignment, with
  // invalid_argument: no stream is made, the slot keeps what it had.
  [[nodiscard]] bool refused(const bytecast::stream_options& o) const {
    return o.from_position && (*o.from_position > written_ || o.align_to_sync_points);
  }

  // A new stream with options `o` in slot b % 4 (b & 8: move-assigned over the old one).
  void make_stream(std::uint8_t b, const bytecast::stream_options& o) {
    const std::size_t i = b % stream_slots;
    if (refused(o)) {
      bool threw = false;
      try {
        auto s = subscribe(o);
      } catch (const bytecast::system_error& e) {
        threw = true;
        FUZZ_CHECK(e.code() == asio::error::invalid_argument, "stream() with refused options threw %s",
                   ec_name(e.code()).c_str());
      }
      FUZZ_CHECK(threw, "stream() made a stream with from_position %llu (bytes_written() %llu, aligned %d)",
                 static_cast<unsigned long long>(*o.from_position), static_cast<unsigned long long>(written_),
                 o.align_to_sync_points ? 1 : 0);
      return;
    }
    stream_slot& sl = slots_[i];
    if (sl.s && (b & 8) != 0) {
      // Move-assigning over a stream destroys it (its read is aborted, its queue released) after
      // the new one joined: waits for streams see one more first, and the room the old one
      // leaves may go to the new one at once.
      before_destroy(sl);
      const bool was_current = sl.m.gen == gen_;
      {
        const library_call call(*this);
        sl.s = subscribe(o);
      }
      if (open_) update_waits(live_count() + 1);
      sl.m = fresh_model(o);
      update_waits();
      if (was_current) on_space();
    } else {
      if (sl.s) drop_stream(i);
      sl.s.emplace(subscribe(o));
      sl.m = fresh_model(o);
      update_waits();
    }
    FUZZ_CHECK(sl.s->writer_id() == writer_->id(), "writer_id() %llu of a new stream, writer id() %llu",
               static_cast<unsigned long long>(sl.s->writer_id()), static_cast<unsigned long long>(writer_->id()));
  }

  // Starts a wait for streams; `arg`: bits 0-2 n, bit 3 async_wait_no_streams instead, bit 4
  // bound to a cancellation slot.
  void start_wait(unsigned arg) {
    pending_wait* p = waits_.emplace_back(std::make_unique<pending_wait>()).get();
    p->id = ++next_id_;
    p->n = arg & 7;
    p->for_none = (arg & 8) != 0;
    p->has_slot = (arg & 16) != 0;
    p->expected = !open_                         ? outcome::broken_pipe
                  : p->satisfied_by(live_count()) ? outcome::success
                                                  : outcome::parked;
    auto handler = [this, p](bytecast::error_code ec) { on_wait_complete(p, ec); };
    auto start = [&](auto h) {
      if (p->for_none)
        writer_->async_wait_no_streams(std::move(h));
      else
        writer_->async_wait_for_streams(p->n, std::move(h));
    };
    ++started_;
    const library_call call(*this);
    if (p->has_slot)
      start(asio::bind_cancellation_slot(p->signal.slot(), handler));
    else
      start(handler);
  }

  void on_wait_complete(pending_wait* p, bytecast::error_code ec) {
    FUZZ_CHECK(!initiating_, "%s (%d) completed inside a call into the library", p->what().c_str(), p->id);
    FUZZ_CHECK(!p->done, "%s (%d) completed twice", p->what().c_str(), p->id);
    p->done = true;
    ++completed_;
    FUZZ_CHECK(p->expected != outcome::parked, "%s (%d) completed with %s; the model has it waiting (%zu live)",
               p->what().c_str(), p->id, ec_name(ec).c_str(), live_count());
    FUZZ_CHECK(ec == expected_ec(p->expected), "%s (%d) completed with %s, expected %s", p->what().c_str(), p->id,
               ec_name(ec).c_str(), ec_name(expected_ec(p->expected)).c_str());
  }

  // Cancels one of the pending slot-bound waits; `arg`: bits 0-1 the cancellation type (none
  // cancels nothing), the others which wait.
  void cancel_wait(unsigned arg) {
    std::vector<pending_wait*> cancellable;
    for (auto& w : waits_)
      if (!w->done && w->has_slot) cancellable.push_back(w.get());
    if (cancellable.empty()) return;
    pending_wait* p = cancellable[(arg >> 2) % cancellable.size()];
    // After poll() every wait that is not waiting has completed.
    FUZZ_CHECK(p->expected == outcome::parked, "%s (%d) is pending but not waiting", p->what().c_str(), p->id);
    const auto type = cancellation_types[arg % 4];
    if (type != asio::cancellation_type::none) p->expected = outcome::aborted;
    const library_call call(*this);
    p->signal.emit(type);
  }

  void before_destroy(stream_slot& sl) {
    if (sl.op) sl.op->stream_gone = true;
  }

  void after_destroy(stream_slot& sl) {
    const bool was_current = sl.m.gen == gen_;
    sl.m = model_stream{};
    sl.m.counted = false;
    update_waits();
    if (was_current) on_space();
  }

  void drop_stream(std::size_t i) {
    stream_slot& sl = slots_[i];
    if (!sl.s) return;
    before_destroy(sl);
    {
      const library_call call(*this);
      sl.s.reset();
    }
    after_destroy(sl);
  }

  void read(script& in, bool second) {
    const std::uint8_t a = in.byte(), b = in.byte();
    stream_slot& sl = slots_[a % stream_slots];
    if (!sl.s) return;
    const auto kind = static_cast<read_kind>((a / 4) % 5);
    const bool with_slot = (a & 64) != 0;
    std::size_t size = kind == read_kind::read_zero ? 0 : 1 + b % 48;
    if ((a & 128) != 0 && kind != read_kind::read_zero) size += static_cast<std::size_t>(b) * 16;
    if (sl.op) {
      // A second read while one is pending: already_started, not inline; the first untouched.
      if (!second) return;
      auto probe = std::make_shared<int>(0);
      ++started_;
      initiating_ = true;
      auto check = [this, probe](bytecast::error_code ec, auto&&...) {
        FUZZ_CHECK(!initiating_, "a second read completed inside a call into the library");
        FUZZ_CHECK(++*probe == 1, "a second read completed twice");
        FUZZ_CHECK(ec == asio::error::already_started, "a second read completed with %s", ec_name(ec).c_str());
        ++completed_;
      };
      switch (kind) {
        case read_kind::next:
          sl.s->async_next(check);
          break;
        case read_kind::next_chunk:
          sl.s->async_next_chunk(check);
          break;
        default:
          sl.s->async_read_some(asio::mutable_buffer(), check);
          break;
      }
      initiating_ = false;
      return;
    }
    auto op = std::make_unique<pending_read>();
    op->id = ++next_id_;
    op->kind = kind;
    op->buffer_size = size;
    op->split = size == 0 ? 0 : b % (size + 1);
    op->has_slot = with_slot;
    op->buffer = std::make_unique<std::byte[]>(size + 1);
    pending_read* p = op.get();
    const std::size_t slot_index = static_cast<std::size_t>(&sl - slots_.data());
    sl.op = std::move(op);
    ++started_;
    initiating_ = true;
    // Each form with and without a cancellation slot.
    auto on_span = [this, slot_index, p](bytecast::error_code ec, std::span<const std::byte> s) {
      on_read_complete(slot_index, p, ec, bytes(s.begin(), s.end()), s.empty());
    };
    auto on_chunk = [this, slot_index, p](bytecast::error_code ec, bytecast::chunk c) {
      on_read_complete(slot_index, p, ec, bytes(c.bytes().begin(), c.bytes().end()), c.empty());
    };
    auto on_size = [this, slot_index, p](bytecast::error_code ec, std::size_t n) {
      FUZZ_CHECK(n <= p->buffer_size, "async_read_some returned %zu for a %zu-byte buffer", n, p->buffer_size);
      on_read_complete(slot_index, p, ec, bytes(p->buffer.get(), p->buffer.get() + n), n == 0);
    };
    auto bind = [&](auto h) { return asio::bind_cancellation_slot(sl.signal.slot(), std::move(h)); };
    std::array<asio::mutable_buffer, 2> two{asio::buffer(p->buffer.get(), p->split),
                                            asio::buffer(p->buffer.get() + p->split, size - p->split)};
    switch (kind) {
      case read_kind::next:
        if (with_slot)
          sl.s->async_next(bind(on_span));
        else
          sl.s->async_next(on_span);
        break;
      case read_kind::next_chunk:
        if (with_slot)
          sl.s->async_next_chunk(bind(on_chunk));
        else
          sl.s->async_next_chunk(on_chunk);
        break;
      case read_kind::read_some:
      case read_kind::read_zero:
        if (with_slot)
          sl.s->async_read_some(asio::buffer(p->buffer.get(), size), bind(on_size));
        else
          sl.s->async_read_some(asio::buffer(p->buffer.get(), size), on_size);
        break;
      case read_kind::read_some_two:
        if (with_slot)
          sl.s->async_read_some(two, bind(on_size));
        else
          sl.s->async_read_some(two, on_size);
        break;
    }
    initiating_ = false;
  }

  void cancel_read(script& in) {
    const std::uint8_t a = in.byte();
    stream_slot& sl = slots_[a % stream_slots];
    const auto type = cancellation_types[(a / 4) % 4];
    if (sl.op && sl.op->has_slot && type != asio::cancellation_type::none) sl.op->cancelled = true;
    const library_call call(*this);
    sl.signal.emit(type);  // with no read pending (or none bound to the slot): nothing happens
  }

  // Completion of a read: compares it with what the model says the read takes now.
  void on_read_complete(std::size_t slot_index, pending_read* p, bytecast::error_code ec, bytes got, bool empty) {
    FUZZ_CHECK(!initiating_, "%s (read %d) completed inside a call into the library", name(p->kind), p->id);
    stream_slot& sl = slots_[slot_index];
    ++completed_;
    // The slot's op is this one, unless the stream was destroyed (then the op was detached).
    std::unique_ptr<pending_read> owner;
    if (sl.op.get() == p)
      owner = std::move(sl.op);
    else {
      for (auto it = orphans_.begin(); it != orphans_.end(); ++it)
        if (it->get() == p) {
          owner = std::move(*it);
          orphans_.erase(it);
          break;
        }
    }
    FUZZ_CHECK(owner != nullptr, "read %d completed twice (or was never started)", p->id);
    if (p->stream_gone) {
      FUZZ_CHECK(ec == asio::error::operation_aborted, "%s pending when its stream was destroyed completed with %s",
                 name(p->kind), ec_name(ec).c_str());
      return;
    }
    if (p->cancelled) {
      FUZZ_CHECK(ec == asio::error::operation_aborted, "cancelled %s completed with %s (%zu bytes)", name(p->kind),
                 ec_name(ec).c_str(), got.size());
      return;
    }
    FUZZ_CHECK(ec != asio::error::operation_aborted, "%s completed with operation_aborted, never cancelled",
               name(p->kind));
    check_take(sl.m, p->kind, p->buffer_size, ec, got, empty, name(p->kind), true);
  }

  // The model's side of one read (async or try_next): `got` is what the library returned.
  // Returns false if the model says the read has to wait.
  bool check_take(model_stream& m, read_kind kind, std::size_t buffer_size, bytecast::error_code ec, const bytes& got,
                  bool empty, const char* what, bool completed) {
    const bool some = kind == read_kind::read_some || kind == read_kind::read_some_two;
    if (kind == read_kind::read_zero) {
      FUZZ_CHECK(!ec && got.empty(), "%s completed with %s, %zu bytes", what, ec_name(ec).c_str(), got.size());
      return true;
    }
    // The header first, whatever else there is to report; a chunk begun with async_read_some is
    // finished before anything else.
    if (m.offset > 0 || m.header_front || (!m.lagged && !m.queue.empty())) {
      const bool fresh = m.offset == 0;  // takes a chunk the writer could see
      m.lagged_reported = false;
      FUZZ_CHECK(!ec, "%s completed with %s; the model has %zu bytes queued", what, ec_name(ec).c_str(),
                 m.remaining_bytes());
      if (!some) {
        const bytes& front = *m.queue.front();
        const bytes expected(front.begin() + static_cast<std::ptrdiff_t>(m.offset), front.end());
        FUZZ_CHECK(got == expected, "%s returned %zu bytes, expected the %zu bytes of the next chunk (from offset %zu)",
                   what, got.size(), expected.size(), m.offset);
        FUZZ_CHECK(!empty, "%s returned an empty chunk", what);
        m.pop();
        m.offset = 0;
      } else {
        FUZZ_CHECK(!got.empty(), "%s returned 0 bytes with %zu queued", what, m.remaining_bytes());
        FUZZ_CHECK(got.size() <= buffer_size, "%s returned more than its buffer", what);
        FUZZ_CHECK(got.size() <= m.remaining_bytes(), "%s returned %zu bytes, only %zu queued", what, got.size(),
                   m.remaining_bytes());
        std::size_t i = 0;
        while (i < got.size()) {
          const bytes& front = *m.queue.front();
          const std::size_t n = std::min(got.size() - i, front.size() - m.offset);
          FUZZ_CHECK(std::memcmp(got.data() + i, front.data() + m.offset, n) == 0,
                     "%s returned bytes that differ from the queued ones at %zu", what, i);
          i += n;
          m.offset += n;
          if (m.offset == front.size()) {
            m.pop();
            m.offset = 0;
          }
        }
      }
      if (fresh) on_space();
      return true;
    }
    if (m.lagged) {
      FUZZ_CHECK(ec == bytecast::error::lagged && got.empty(), "%s completed with %s, expected lagged", what,
                 ec_name(ec).c_str());
      m.lagged = false;
      m.lagged_reported = true;
      return true;
    }
    switch (m.end) {
      case model_stream::end_state::open:
        FUZZ_CHECK(!completed, "%s completed with %s (%zu bytes) though the model has nothing", what,
                   ec_name(ec).c_str(), got.size());
        return false;
      case model_stream::end_state::closed:
        if (m.reason) {  // for every read from now on
          FUZZ_CHECK(ec == m.reason && got.empty(), "%s after the backlog completed with %s, expected the reason %s",
                     what, ec_name(ec).c_str(), ec_name(m.reason).c_str());
          return true;
        }
        if (some)
          FUZZ_CHECK(ec == asio::error::eof && got.empty(), "%s at the sentinel completed with %s, expected eof", what,
                     ec_name(ec).c_str());
        else
          FUZZ_CHECK(!ec && empty, "%s at the sentinel completed with %s and %zu bytes", what, ec_name(ec).c_str(),
                     got.size());
        m.end = model_stream::end_state::finished;
        return true;
      case model_stream::end_state::finished:
        FUZZ_CHECK(ec == asio::error::eof && got.empty(), "%s after the sentinel completed with %s", what,
                   ec_name(ec).c_str());
        return true;
      case model_stream::end_state::cut:
        FUZZ_CHECK(ec == bytecast::error::overflowed && got.empty(), "%s on a cut-off stream completed with %s", what,
                   ec_name(ec).c_str());
        return true;
    }
    return true;
  }

  void try_next(std::size_t i) {
    stream_slot& sl = slots_[i];
    if (!sl.s) return;
    bytecast::error_code ec;
    std::span<const std::byte> b;
    {
      const library_call call(*this);
      b = sl.s->try_next(ec);
    }
    if (sl.op) {
      FUZZ_CHECK(ec == asio::error::already_started && b.empty(), "try_next during a pending read: %s",
                 ec_name(ec).c_str());
      return;
    }
    if (ec == asio::error::would_block) {
      FUZZ_CHECK(!check_take(sl.m, read_kind::next, 0, {}, {}, true, "try_next", false),
                 "try_next reported would_block though the model has something");
      return;
    }
    check_take(sl.m, read_kind::next, 0, ec, bytes(b.begin(), b.end()), b.empty(), "try_next", true);
  }

  // ------------------------------------------------------------------------------------------
  // After every operation
  // ------------------------------------------------------------------------------------------

  void settle() {
    ctx_.restart();
    ctx_.poll();
    check_state();
  }

  void check_state() {
    // Destroyed streams hand their reads over to orphans_ until they complete.
    for (auto& sl : slots_) {
      if (sl.op && sl.op->stream_gone) orphans_.push_back(std::move(sl.op));
    }
    FUZZ_CHECK(orphans_.empty(), "%zu reads of destroyed streams did not complete", orphans_.size());
    std::size_t counted = 0;
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      stream_slot& sl = slots_[i];
      if (!sl.s) {
        FUZZ_CHECK(!sl.op, "slot %zu: a read outlived its stream", i);
        continue;
      }
      const model_stream& m = sl.m;
      if (live(sl)) ++counted;
      FUZZ_CHECK(sl.s->queued_chunks() == m.queue.size(), "stream %zu: queued_chunks() %zu, model %zu", i,
                 sl.s->queued_chunks(), m.queue.size());
      FUZZ_CHECK(sl.s->queued_bytes() == m.remaining_bytes(), "stream %zu: queued_bytes() %zu, model %zu", i,
                 sl.s->queued_bytes(), m.remaining_bytes());
      FUZZ_CHECK(sl.s->dropped() == m.dropped, "stream %zu: dropped() %llu, model %llu", i,
                 static_cast<unsigned long long>(sl.s->dropped()), static_cast<unsigned long long>(m.dropped));
      FUZZ_CHECK(sl.s->position() == m.position(), "stream %zu: position() %llu, model %llu", i,
                 static_cast<unsigned long long>(sl.s->position()), static_cast<unsigned long long>(m.position()));
      if (sl.op) {
        FUZZ_CHECK(!sl.op->cancelled, "stream %zu: a cancelled %s is still pending", i, name(sl.op->kind));
        FUZZ_CHECK(!m.has_news() && sl.op->kind != read_kind::read_zero,
                   "stream %zu: %s still pending though it has something to report (%zu bytes, lagged %d, end %d)", i,
                   name(sl.op->kind), m.remaining_bytes(), m.lagged ? 1 : 0, static_cast<int>(m.end));
      }
    }
    FUZZ_CHECK(writer_->stream_count() == counted, "stream_count() %zu, model %zu", writer_->stream_count(), counted);
    FUZZ_CHECK(writer_->bytes_written() == written_, "bytes_written() %llu, model %llu",
               static_cast<unsigned long long>(writer_->bytes_written()), static_cast<unsigned long long>(written_));
    FUZZ_CHECK(writer_->is_open() == open_, "is_open() %d, model %d", writer_->is_open() ? 1 : 0, open_ ? 1 : 0);
    for (auto& w : writes_)
      if (!w->done)
        FUZZ_CHECK(w->expected == outcome::parked, "write %d (%zu bytes) did not complete", w->id,
                   w->data->size());
    for (auto& w : waits_)
      if (!w->done)
        FUZZ_CHECK(w->expected == outcome::parked, "%s (%d) did not complete (%zu live streams)", w->what().c_str(),
                   w->id, counted);
    // A bounded stream never holds more than its limit, or one chunk that came alone.
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      const model_stream& m = slots_[i].m;
      FUZZ_CHECK(!live(slots_[i]) || m.pol == policy::unbounded || m.replayed || m.writer_weight() <= m.limit ||
                     m.writer_chunks() <= 1,
                 "stream %zu holds %zu bytes in %zu chunks over its limit of %zu", i, m.writer_weight(),
                 m.writer_chunks(), m.limit);
    }
  }

  // The end of the script: close, drain every stream through the model, destroy everything.
  void finish() {
    close();
    settle();
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      stream_slot& sl = slots_[i];
      if (!sl.s) continue;
      FUZZ_CHECK(!sl.op || sl.op->kind == read_kind::read_zero, "stream %zu: a read still pending after close", i);
      for (int guard = 0; guard < 100000; ++guard) {
        // The writer is closed: with nothing queued or lagged, the read gives the stream's end.
        const bool end = sl.m.queue.empty() && !sl.m.lagged;
        bytecast::error_code ec;
        auto b = sl.s->try_next(ec);
        FUZZ_CHECK(ec != asio::error::would_block, "stream %zu: would_block after close", i);
        check_take(sl.m, read_kind::next, 0, ec, bytes(b.begin(), b.end()), b.empty(), "try_next (drain)", true);
        if (end) break;
      }
      settle();
    }
    for (std::size_t i = 0; i < slots_.size(); ++i) drop_stream(i);
    writer_.reset();
    ctx_.restart();
    ctx_.poll();
    for (auto& sl : slots_)
      if (sl.op && sl.op->stream_gone) orphans_.push_back(std::move(sl.op));
    FUZZ_CHECK(orphans_.empty(), "%zu reads did not complete", orphans_.size());
    FUZZ_CHECK(started_ == completed_, "%llu operations started, %llu completed",
               static_cast<unsigned long long>(started_), static_cast<unsigned long long>(completed_));
  }

  asio::io_context ctx_;
  bytecast::writer_options opts_;
  std::optional<bytecast::byte_writer> writer_;
  int gen_ = 0;
  bool open_ = true;
  bytecast::error_code close_reason_;  // what the first close gave, once closed
  std::deque<chunk_ptr> replay_;
  std::size_t replay_weight_ = 0;
  chunk_ptr header_;  // what set_header set (none: nullptr)
  std::uint64_t written_ = 0;
  std::deque<pending_write*> parked_;
  std::vector<std::unique_ptr<pending_write>> writes_;
  std::vector<std::unique_ptr<pending_wait>> waits_;
  std::array<stream_slot, stream_slots> slots_;
  std::vector<std::unique_ptr<pending_read>> orphans_;
  std::uint64_t write_counter_ = 0;
  int next_id_ = 0;
  bool initiating_ = false;  // inside a call into the library (library_call): no handler may run
  std::uint64_t started_ = 0, completed_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  script in(data + 1, size - 1);
  fuzz_run run(data[0]);
  run.run(in);
  return 0;
}
