// Tests for bytecast::stalled_monitor (stalled_monitor.hpp) over the three kinds of stream it
// must accept: a byte_stream, a typed_stream and a user's own stream type (int_stream, below).
// Timeout, throttle, the chaining setters, cancellation, inline-completion rules and use from a
// multi-threaded io_context. Timing bounds are generous: these also run under ThreadSanitizer.
#include "test_util.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <variant>

using namespace bytecast_test;
using namespace asio::experimental::awaitable_operators;
using clock_type = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// A user-defined stream: not from bytecast, it has exactly what stalled_monitor asks for.
// ---------------------------------------------------------------------------------------------

// In the anonymous namespace on purpose, as a user's own stream in a .cpp file often is: a type
// without linkage must work too (clang once rejected it in stalled_monitor's signature probe).
namespace {

// Ints queued in a std::deque; a steady_timer that never expires serves as the wake-up signal
// (every push cancels it). Completion: void(bytecast::error_code, int); after close, reads complete
// with asio::error::eof. Per-operation cancellation (terminal, partial, total) completes a
// pending read with operation_aborted and takes nothing. All state lives on the stream's strand;
// int_source::write and close may be called from any thread.
class int_stream {
  struct op_base {
    virtual ~op_base() = default;
    virtual void finish(bytecast::error_code ec, int v) = 0;
    asio::any_io_executor handler_ex;  // where the completion runs
    bool cancelled = false;            // on the stream's strand
    bool done = false;                 // on the stream's strand
  };

  template <class Handler>
  struct op final : op_base {
    explicit op(Handler&& h) : handler(std::move(h)) {}
    void finish(bytecast::error_code ec, int v) override {
      // Runs on the handler's executor, where the cancellation signal is emitted: the slot is
      // cleared there, never concurrently with an emit.
      if (slot.is_connected()) slot.clear();
      Handler h(std::move(handler));
      std::move(h)(ec, v);
    }
    Handler handler;
    asio::cancellation_slot slot;
  };

  struct state : std::enable_shared_from_this<state> {
    explicit state(const asio::any_io_executor& ex)
        : strand(asio::make_strand(ex)), wake(strand, asio::steady_timer::time_point::max()) {}

    void attempt(const std::shared_ptr<op_base>& o) {
      if (o->done) return;
      if (o->cancelled) return complete(o, asio::error::operation_aborted, 0);
      if (!items.empty()) {
        const int v = items.front();
        items.pop_front();
        return complete(o, {}, v);
      }
      if (closed) return complete(o, asio::error::eof, 0);
      wake.expires_at(asio::steady_timer::time_point::max());
      wake.async_wait([self = shared_from_this(), o](bytecast::error_code) { self->attempt(o); });
    }

    static void complete(const std::shared_ptr<op_base>& o, bytecast::error_code ec, int v) {
      o->done = true;
      asio::post(o->handler_ex, [o, ec, v] { o->finish(ec, v); });
    }

    asio::strand<asio::any_io_executor> strand;
    asio::steady_timer wake;  // on the strand; cancelled to wake a waiting read
    std::deque<int> items;    // on the strand
    bool closed = false;      // on the strand
  };

  struct canceller {
    std::shared_ptr<state> st;
    std::weak_ptr<op_base> o;  // weak: the operation owns the handler that owns the signal
    void operator()(asio::cancellation_type_t type) {
      if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                   asio::cancellation_type::total)) == asio::cancellation_type::none)
        return;
      asio::post(st->strand, [st = st, o = o] {
        if (auto p = o.lock(); p && !p->done) {
          p->cancelled = true;
          st->wake.cancel();
        }
      });
    }
  };

  struct initiate_next {
    std::shared_ptr<state> st;
    template <class Handler>
    void operator()(Handler&& handler) const {
      using handler_type = std::decay_t<Handler>;
      auto slot = asio::get_associated_cancellation_slot(handler);
      auto o = std::make_shared<op<handler_type>>(handler_type(std::forward<Handler>(handler)));
      o->handler_ex = asio::get_associated_executor(o->handler, asio::any_io_executor(st->strand));
      if (slot.is_connected()) {
        o->slot = slot;
        slot.template emplace<canceller>(canceller{st, o});
      }
      asio::post(st->strand, [st = st, o = std::shared_ptr<op_base>(o)] { st->attempt(o); });
    }
  };

 public:
  using executor_type = asio::any_io_executor;

  explicit int_stream(std::shared_ptr<state> st) : st_(std::move(st)) {}

  executor_type get_executor() const { return st_->strand; }

  template <class CompletionToken>
  auto async_next(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(bytecast::error_code, int)>(initiate_next{st_}, token);
  }

 private:
  friend class int_source;
  std::shared_ptr<state> st_;
};

// The writing side of int_stream: every stream made gets every later write, in one order.
class int_source {
 public:
  explicit int_source(asio::any_io_executor ex) : ex_(std::move(ex)) {}
  explicit int_source(asio::io_context& ctx) : ex_(ctx.get_executor()) {}
  int_source(const int_source&) = delete;
  int_source& operator=(const int_source&) = delete;
  ~int_source() { close(); }

  int_stream stream() {
    std::lock_guard lock(mutex_);
    auto st = std::make_shared<int_stream::state>(ex_);
    if (closed_) asio::post(st->strand, [st] { st->closed = true; });
    streams_.push_back(st);
    return int_stream(st);
  }
  void write(int v) {
    std::lock_guard lock(mutex_);  // one order for every stream
    for (auto& weak : streams_)
      if (auto st = weak.lock())
        asio::post(st->strand, [st, v] {
          st->items.push_back(v);
          st->wake.cancel();
        });
  }
  void close() {
    std::lock_guard lock(mutex_);
    if (std::exchange(closed_, true)) return;
    for (auto& weak : streams_)
      if (auto st = weak.lock())
        asio::post(st->strand, [st] {
          st->closed = true;
          st->wake.cancel();
        });
  }

 private:
  asio::any_io_executor ex_;
  std::mutex mutex_;
  std::vector<std::weak_ptr<int_stream::state>> streams_;  // guarded by mutex_
  bool closed_ = false;                                    // guarded by mutex_
};


// ---------------------------------------------------------------------------------------------
// The three kinds of stream (byte_kind and typed_kind<int> from test_util.hpp, and user_kind),
// behind one interface for the templated tests.
// ---------------------------------------------------------------------------------------------

// What a monitored read produced, whatever the stream kind.
struct item {
  enum what_t { value, end, timed_out, aborted, other } what = other;
  int v = -1;
  bytecast::error_code ec;

  friend bool operator==(const item& a, const item& b) { return a.what == b.what && a.v == b.v; }
};

std::string describe(const item& i) {
  switch (i.what) {
    case item::value: return std::to_string(i.v);
    case item::end: return "<end>";
    case item::timed_out: return "<timed out>";
    case item::aborted: return "<aborted>";
    case item::other: break;
  }
  return "<" + i.ec.message() + ">";
}

inline item classify_error(bytecast::error_code ec) {
  if (ec == asio::error::timed_out) return {item::timed_out, -1, ec};
  if (ec == asio::error::operation_aborted) return {item::aborted, -1, ec};
  return {item::other, -1, ec};
}

// The user's stream as a kind beside byte_kind and typed_kind<int> (test_util.hpp): it carries
// ints, and has no end item: after close, reads complete with eof.
struct user_kind {
  using writer_type = int_source;
  using stream_type = int_stream;
  using value_type = int;
  using next_type = int;

  static value_type value(int i) { return i; }
};

// A writer of the given kind that writes ints: the monitored side of every templated test.
template <class Kind>
struct source {
  explicit source(asio::io_context& ctx) : w(ctx) {}
  typename Kind::stream_type stream() { return w.stream(); }
  void write(int v) { w.write(Kind::value(v)); }
  void close() { w.close(); }

  typename Kind::writer_type w;
};

// What a monitored read of a stream of kind `Kind` produced.
template <class Kind>
item decode(bytecast::error_code ec, const typename Kind::next_type& v) {
  if constexpr (std::is_same_v<Kind, user_kind>) {
    if (ec == asio::error::eof) return {item::end, -1, ec};
    if (ec) return classify_error(ec);
    return {item::value, v, ec};
  } else {
    if (ec) return classify_error(ec);
    const auto got = Kind::item(v);
    if (!got) return {item::end, -1, ec};
    return {item::value, Kind::number(*got), ec};
  }
}

// Whether a timed-out read's value is value-initialised, for each kind's completion value.
bool is_value_initialised(std::span<const std::byte> b) { return b.data() == nullptr && b.empty(); }
bool is_value_initialised(const std::optional<int>& v) { return !v.has_value(); }
bool is_value_initialised(int v) { return v == 0; }

template <class Kind>
using monitor_for = bytecast::stalled_monitor<typename Kind::stream_type>;

// The result of one callback-style monitored read, seeded so that an inline completion is visible.
template <class Kind>
struct monitored {
  int calls = 0;
  bytecast::error_code ec = not_called;
  item got;
  bool value_initialised = false;
  clock_type::time_point at{};

  auto handler() {
    return [this](bytecast::error_code e, typename Kind::next_type v) {
      at = clock_type::now();  // first: the delivery time as the reader sees it
      ++calls;
      ec = e;
      got = decode<Kind>(e, v);
      value_initialised = is_value_initialised(v);
    };
  }
};

// One monitored read on the single-threaded `ctx`.
template <class Kind>
monitored<Kind> read_one(asio::io_context& ctx, monitor_for<Kind>& m, clock_type::duration timeout = 30s) {
  monitored<Kind> r;
  m.async_next(r.handler());
  run_until(ctx, [&] { return r.calls > 0; }, timeout);
  REQUIRE(r.calls == 1);
  return r;
}

// Runs `fn` on `ctx` after `d`.
struct scheduler {
  asio::io_context& ctx;
  std::list<asio::steady_timer> timers;
  template <class Fn>
  void after(clock_type::duration d, Fn fn) {
    auto& t = timers.emplace_back(ctx, d);
    t.async_wait([fn = std::move(fn)](bytecast::error_code ec) mutable {
      if (!ec) fn();
    });
  }
};

// "" when `values` is exactly 0, 1, ..., count - 1; otherwise what is lost, duplicated or out of order.
std::string mismatch(const std::vector<int>& values, int count) {
  std::vector<int> seen(static_cast<std::size_t>(count), 0);
  std::string out;
  int previous = -1;
  for (int v : values) {
    if (v < 0 || v >= count) {
      out += " unexpected " + std::to_string(v) + ";";
      continue;
    }
    if (++seen[static_cast<std::size_t>(v)] == 2) out += " duplicated " + std::to_string(v) + ";";
    if (v < previous) out += " " + std::to_string(v) + " after " + std::to_string(previous) + ";";
    previous = v;
  }
  int lost = 0;
  for (int i = 0; i < count; ++i)
    if (seen[static_cast<std::size_t>(i)] == 0 && ++lost <= 10) out += " lost " + std::to_string(i) + ";";
  if (lost > 10) out += " ... " + std::to_string(lost) + " lost in total;";
  return out;
}

template <class Rep, class Period>
long long ms(std::chrono::duration<Rep, Period> d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Types and setters
// ---------------------------------------------------------------------------------------------

TEST_CASE("stalled_monitor: CTAD deduces the stream type and the completion is the inner stream's") {
  asio::io_context ctx;
  bytecast::byte_writer bw(ctx);
  bytecast::typed_writer<std::string> tw(ctx);
  int_source src(ctx.get_executor());

  bytecast::stalled_monitor bm{bw.stream()};
  bytecast::stalled_monitor tm{tw.stream()};
  bytecast::stalled_monitor um{src.stream()};
  STATIC_REQUIRE(std::is_same_v<decltype(bm), bytecast::stalled_monitor<bytecast::byte_stream>>);
  STATIC_REQUIRE(std::is_same_v<decltype(tm), bytecast::stalled_monitor<bytecast::typed_stream<std::string>>>);
  STATIC_REQUIRE(std::is_same_v<decltype(um), bytecast::stalled_monitor<int_stream>>);
  STATIC_REQUIRE(std::is_same_v<decltype(bm.inner()), bytecast::byte_stream&>);
  STATIC_REQUIRE(std::is_same_v<decltype(um.inner()), int_stream&>);
  STATIC_REQUIRE(noexcept(bm.inner()));
  // Explicit: a stream does not silently convert into a monitor.
  STATIC_REQUIRE_FALSE(std::is_convertible_v<bytecast::byte_stream, bytecast::stalled_monitor<bytecast::byte_stream>>);

  // The completion value types, seen through use_awaitable.
  STATIC_REQUIRE(std::is_same_v<decltype(bm.async_next(asio::use_awaitable)),
                                asio::awaitable<std::span<const std::byte>>>);
  STATIC_REQUIRE(std::is_same_v<decltype(tm.async_next(asio::use_awaitable)),
                                asio::awaitable<std::optional<std::string>>>);
  STATIC_REQUIRE(std::is_same_v<decltype(um.async_next(asio::use_awaitable)), asio::awaitable<int>>);

  CHECK(bm.inner().writer_id() == bw.id());
  CHECK(tm.inner().writer_id() == tw.id());
}

TEST_CASE("stalled_monitor: with_timeout and with_throttle chain on lvalues and rvalues") {
  using monitor = bytecast::stalled_monitor<bytecast::byte_stream>;
  STATIC_REQUIRE(std::is_same_v<decltype(std::declval<monitor&>().with_timeout(1s)), monitor&>);
  STATIC_REQUIRE(std::is_same_v<decltype(std::declval<monitor&>().with_throttle(1s)), monitor&>);
  STATIC_REQUIRE(std::is_same_v<decltype(std::declval<monitor&&>().with_timeout(1s)), monitor&&>);
  STATIC_REQUIRE(std::is_same_v<decltype(std::declval<monitor&&>().with_throttle(1s)), monitor&&>);
  STATIC_REQUIRE(std::is_same_v<decltype(std::declval<monitor&>().with_timeout(1s).with_throttle(500ms)), monitor&>);
  STATIC_REQUIRE(
      std::is_same_v<decltype(std::declval<monitor&&>().with_timeout(1s).with_throttle(500ms)), monitor&&>);

  asio::io_context ctx;
  bytecast::byte_writer w(ctx);

  // The documented one-liner.
  auto m = bytecast::stalled_monitor{w.stream()}.with_timeout(2s).with_throttle(500ms);
  STATIC_REQUIRE(std::is_same_v<decltype(m), monitor>);
  STATIC_REQUIRE(std::is_same_v<decltype(bytecast::stalled_monitor{w.stream()}.with_timeout(2s).with_throttle(500ms)),
                                monitor&&>);

  // On an lvalue the setters return the same object.
  monitor& same = m.with_timeout(1s).with_throttle(0ms);
  CHECK(&same == &m);

  // The settings made on the rvalue chain are kept by the moved-to monitor.
  auto timing_out = bytecast::stalled_monitor{w.stream()}.with_throttle(0ms).with_timeout(30ms);
  const auto start = clock_type::now();
  monitored<byte_kind> r;
  timing_out.async_next(r.handler());
  run_until(ctx, [&] { return r.calls > 0; });
  CHECK(r.ec == asio::error::timed_out);
  CHECK(r.at - start >= 30ms);

  // A zero timeout means none: the read waits for the data.
  monitor none{w.stream()};
  none.with_timeout(0s);
  monitored<byte_kind> waits;
  none.async_next(waits.handler());
  scheduler later{ctx, {}};
  later.after(60ms, [&] { w.write("1"); });
  run_until(ctx, [&] { return waits.calls > 0; });
  CHECK_FALSE(waits.ec);
  CHECK(waits.got == item{item::value, 1, {}});
}

// ---------------------------------------------------------------------------------------------
// Pass-through, timeout, throttle: the same rules for every kind of stream
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("stalled_monitor: without timeout or throttle every item passes through unchanged", "",
                   byte_kind, typed_kind<int>, user_kind) {
  asio::io_context ctx;
  source<TestType> src(ctx);
  bytecast::stalled_monitor m{src.stream()};
  for (int i = 0; i < 10; ++i) src.write(i);

  std::vector<item> got;
  for (int i = 0; i < 10; ++i) got.push_back(read_one<TestType>(ctx, m).got);
  // Items written while the monitor waits.
  scheduler later{ctx, {}};
  later.after(20ms, [&] {
    for (int i = 10; i < 20; ++i) src.write(i);
    src.close();
  });
  for (int i = 10; i < 20; ++i) got.push_back(read_one<TestType>(ctx, m).got);
  std::vector<item> expected;
  for (int i = 0; i < 20; ++i) expected.push_back({item::value, i, {}});
  CHECK(got == expected);

  auto end = read_one<TestType>(ctx, m);
  CHECK(end.got.what == item::end);
  if constexpr (!std::is_same_v<TestType, user_kind>) {
    CHECK_FALSE(end.ec);  // the sentinel / nullopt passes through as it is
    CHECK(read_one<TestType>(ctx, m).ec == asio::error::eof);
  }
}

TEMPLATE_TEST_CASE("stalled_monitor: a timeout completes with timed_out and a value-initialised value, and the late item comes next",
                   "", byte_kind, typed_kind<int>, user_kind) {
  asio::io_context ctx;
  source<TestType> src(ctx);
  bytecast::stalled_monitor m{src.stream()};
  m.with_timeout(40ms);

  auto first = read_one<TestType>(ctx, m);
  CHECK(first.ec == asio::error::timed_out);
  CHECK(first.got.what == item::timed_out);
  CHECK(first.value_initialised);

  // The item arrives while the monitor is waiting, but later than its timeout: the read times
  // out (once or more), and the next read returns the item.
  scheduler later{ctx, {}};
  later.after(150ms, [&] { src.write(1); });
  std::vector<item> got;
  int timeouts = 0;
  for (int guard = 0; guard < 1000; ++guard) {
    auto r = read_one<TestType>(ctx, m);
    if (r.got.what == item::timed_out) {
      CHECK(r.value_initialised);
      ++timeouts;
      continue;
    }
    got.push_back(r.got);
    break;
  }
  CHECK(timeouts >= 1);
  CHECK(got == std::vector<item>{{item::value, 1, {}}});

  // Still usable: items written now come in order, nothing was lost or duplicated.
  src.write(2);
  src.write(3);
  CHECK(read_one<TestType>(ctx, m).got == item{item::value, 2, {}});
  CHECK(read_one<TestType>(ctx, m).got == item{item::value, 3, {}});
  CHECK(read_one<TestType>(ctx, m).got.what == item::timed_out);
  src.close();
  CHECK(read_one<TestType>(ctx, m).got.what == item::end);
}

TEMPLATE_TEST_CASE("stalled_monitor: an item already queued is delivered even with a 1 ns timeout", "", byte_kind,
                   typed_kind<int>, user_kind) {
  asio::io_context ctx;
  source<TestType> src(ctx);
  bytecast::stalled_monitor m{src.stream()};
  m.with_timeout(1ns);

  std::vector<item> expected;
  SECTION("one item at a time") {
    std::vector<item> got;
    for (int i = 0; i < 300; ++i) {
      src.write(i);
      got.push_back(read_one<TestType>(ctx, m).got);
      expected.push_back({item::value, i, {}});
    }
    CHECK(got == expected);
    // With nothing queued, the 1 ns timeout does fire.
    CHECK(read_one<TestType>(ctx, m).got.what == item::timed_out);
  }
  SECTION("a backlog, drained without a single timeout") {
    for (int i = 0; i < 300; ++i) src.write(i);
    std::vector<item> got;
    for (int i = 0; i < 300; ++i) {
      got.push_back(read_one<TestType>(ctx, m).got);
      expected.push_back({item::value, i, {}});
    }
    CHECK(got == expected);
    CHECK(read_one<TestType>(ctx, m).got.what == item::timed_out);
  }
  SECTION("behind a throttle") {
    m.with_throttle(2ms);
    for (int i = 0; i < 50; ++i) src.write(i);
    std::vector<item> got;
    for (int i = 0; i < 50; ++i) {
      got.push_back(read_one<TestType>(ctx, m).got);
      expected.push_back({item::value, i, {}});
    }
    CHECK(got == expected);
    CHECK(read_one<TestType>(ctx, m).got.what == item::timed_out);
  }
  SECTION("the end of the stream is not a timeout either") {
    src.write(0);
    src.close();
    CHECK(read_one<TestType>(ctx, m).got == item{item::value, 0, {}});
    CHECK(read_one<TestType>(ctx, m).got.what == item::end);
  }
}

TEMPLATE_TEST_CASE("stalled_monitor: the timeout is measured from when the monitor starts waiting", "", byte_kind,
                   typed_kind<int>, user_kind) {
  constexpr auto d = 200ms;
  asio::io_context ctx;
  source<TestType> src(ctx);
  bytecast::stalled_monitor m{src.stream()};
  m.with_timeout(d);

  // Not from the monitor's construction: it waited 300 ms before the first read.
  std::this_thread::sleep_for(300ms);
  auto start = clock_type::now();
  auto r = read_one<TestType>(ctx, m);
  CHECK(r.got.what == item::timed_out);
  CHECK(r.at - start >= d);
  CHECK(r.at - start < d + 2s);

  // Not from the previous delivery either.
  src.write(1);
  REQUIRE(read_one<TestType>(ctx, m).got == item{item::value, 1, {}});
  std::this_thread::sleep_for(300ms);
  start = clock_type::now();
  r = read_one<TestType>(ctx, m);
  CHECK(r.got.what == item::timed_out);
  CHECK(r.at - start >= d);
  CHECK(r.at - start < d + 2s);

  // Not from the previous timeout: each read gets its whole timeout.
  for (int i = 0; i < 3; ++i) {
    start = clock_type::now();
    r = read_one<TestType>(ctx, m);
    CHECK(r.got.what == item::timed_out);
    CHECK(r.at - start >= d);
    CHECK(r.at - start < d + 2s);
  }

  // An item that arrives before the timeout is delivered when it arrives. The reference time is
  // taken before the write is scheduled, so the lower bound holds by construction.
  scheduler later{ctx, {}};
  start = clock_type::now();
  later.after(50ms, [&] { src.write(2); });
  r = read_one<TestType>(ctx, m);
  CHECK(r.got == item{item::value, 2, {}});
  CHECK(r.at - start >= 50ms);
}

TEMPLATE_TEST_CASE("stalled_monitor: the throttle delivers the first item undelayed and spaces later ones at least d apart",
                   "", byte_kind, typed_kind<int>, user_kind) {
  constexpr auto d = 150ms;
  asio::io_context ctx;
  source<TestType> src(ctx);
  auto m = bytecast::stalled_monitor{src.stream()}.with_throttle(d);

  for (int i = 0; i < 5; ++i) src.write(i);  // written at once
  const auto start = clock_type::now();
  std::vector<monitored<TestType>> reads;
  // The moment each item was delivered, as the monitor counts the throttle from it: just before
  // the handler ran, so a lower bound measured from it holds by construction (one measured from
  // the previous handler's own clock reading would not, by the few instructions in between).
  std::vector<clock_type::time_point> delivered;
  for (int i = 0; i < 5; ++i) {
    reads.push_back(read_one<TestType>(ctx, m));
    REQUIRE(m.last_delivery().has_value());
    CHECK(*m.last_delivery() <= reads.back().at);
    delivered.push_back(*m.last_delivery());
  }

  for (int i = 0; i < 5; ++i) {
    CAPTURE(i);
    CHECK(reads[static_cast<std::size_t>(i)].got == item{item::value, i, {}});
  }
  INFO("first delivery after " << ms(reads[0].at - start) << " ms");
  CHECK(reads[0].at - start < d);  // not held back by the throttle
  for (std::size_t i = 1; i < reads.size(); ++i) {
    CAPTURE(i, ms(reads[i].at - reads[i - 1].at));
    CHECK(reads[i].at - delivered[i - 1] >= d);  // never early
    CHECK(reads[i].at - reads[i - 1].at < d + 2s);
  }

  // After a pause longer than the throttle, the next item is not held back.
  std::this_thread::sleep_for(d + 100ms);
  src.write(5);
  auto call = clock_type::now();
  auto late = read_one<TestType>(ctx, m);
  CHECK(late.got == item{item::value, 5, {}});
  CHECK(late.at - call < d);
  const auto late_delivered = m.last_delivery();
  REQUIRE(late_delivered.has_value());

  // An item written during the throttle wait is delivered at the end of it, not lost.
  scheduler later{ctx, {}};
  later.after(20ms, [&] { src.write(6); });
  auto next = read_one<TestType>(ctx, m);
  CHECK(next.got == item{item::value, 6, {}});
  CHECK(next.at - *late_delivered >= d);
}

TEMPLATE_TEST_CASE("stalled_monitor: throttle and timeout combined lose nothing", "", byte_kind, typed_kind<int>,
                   user_kind) {
  constexpr auto throttle = 60ms;
  asio::io_context ctx;
  source<TestType> src(ctx);
  auto m = bytecast::stalled_monitor{src.stream()}.with_timeout(40ms).with_throttle(throttle);

  // Bursts of items separated by silences longer than the timeout.
  scheduler later{ctx, {}};
  int next = 0;
  for (int burst = 0; burst < 3; ++burst)
    later.after(burst * 400ms, [&] {
      for (int i = 0; i < 3; ++i) src.write(next++);
    });
  later.after(1300ms, [&] { src.close(); });

  std::vector<int> values;
  std::vector<clock_type::time_point> delivered;
  std::vector<clock_type::time_point> delivered_by_monitor;  // the throttle's reference times
  int timeouts = 0;
  for (int guard = 0; guard < 10000; ++guard) {
    auto r = read_one<TestType>(ctx, m);
    if (r.got.what == item::timed_out) {
      ++timeouts;
      continue;
    }
    if (r.got.what == item::end) break;
    REQUIRE(r.got.what == item::value);
    values.push_back(r.got.v);
    delivered.push_back(r.at);
    REQUIRE(m.last_delivery().has_value());
    delivered_by_monitor.push_back(*m.last_delivery());
  }
  CHECK(values == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(timeouts >= 2);  // the silences between the bursts
  for (std::size_t i = 1; i < delivered.size(); ++i) {
    CAPTURE(i, ms(delivered[i] - delivered[i - 1]));
    CHECK(delivered[i] - delivered_by_monitor[i - 1] >= throttle);
  }
}

// ---------------------------------------------------------------------------------------------
// Completion rules
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("stalled_monitor: async_next never completes inline", "", byte_kind, typed_kind<int>, user_kind) {
  const bool on_executor = GENERATE(false, true);
  CAPTURE(on_executor);
  asio::io_context ctx;
  source<TestType> src(ctx);
  bytecast::stalled_monitor m{src.stream()};
  monitored<TestType> r;

  auto initiate = [&] {
    if (!on_executor) {
      m.async_next(r.handler());
      CHECK(r.calls == 0);
      CHECK(r.ec == not_called);
      return;
    }
    bool ran = false;
    asio::post(m.inner().get_executor(), [&] {
      m.async_next(r.handler());
      CHECK(r.calls == 0);
      CHECK(r.ec == not_called);
      ran = true;
    });
    run_until(ctx, [&] { return ran; });
  };

  SECTION("with an item ready") {
    src.write(1);
    ctx.restart();
    ctx.poll();  // the user stream's push runs on its strand
    initiate();
    run_until(ctx, [&] { return r.calls > 0; });
    CHECK(r.got == item{item::value, 1, {}});
  }
  SECTION("with an item ready and a 1 ns timeout") {
    m.with_timeout(1ns);
    src.write(1);
    ctx.restart();
    ctx.poll();
    initiate();
    run_until(ctx, [&] { return r.calls > 0; });
    CHECK(r.got == item{item::value, 1, {}});
  }
  SECTION("with nothing queued and a 1 ns timeout") {
    m.with_timeout(1ns);
    initiate();
    run_until(ctx, [&] { return r.calls > 0; });
    CHECK(r.got.what == item::timed_out);
  }
  SECTION("with a throttle and an item ready") {
    m.with_throttle(1ns);
    src.write(1);
    src.write(2);
    REQUIRE(read_one<TestType>(ctx, m).got == item{item::value, 1, {}});
    initiate();
    run_until(ctx, [&] { return r.calls > 0; });
    CHECK(r.got == item{item::value, 2, {}});
  }
  SECTION("with the stream closed") {
    src.close();
    ctx.restart();
    ctx.poll();
    initiate();
    run_until(ctx, [&] { return r.calls > 0; });
    CHECK(r.got.what == item::end);
  }
  ctx.restart();
  ctx.poll();
  CHECK(r.calls == 1);
}

TEST_CASE("stalled_monitor: completion handlers run on their associated executor") {
  asio::io_context ctx;
  asio::io_context other_ctx;
  bytecast::typed_writer<int> w(ctx);
  bytecast::stalled_monitor m{w.stream()};
  m.with_timeout(10s).with_throttle(1ms);
  int calls = 0;
  bool on_other = false;
  std::optional<int> got;
  m.async_next(asio::bind_executor(other_ctx, [&](bytecast::error_code, std::optional<int> v) {
    ++calls;
    on_other = other_ctx.get_executor().running_in_this_thread();
    got = v;
  }));
  w.write(5);
  const auto deadline = clock_type::now() + 30s;
  while (calls == 0 && clock_type::now() < deadline) {
    poll(ctx);
    poll(other_ctx);
  }
  REQUIRE(calls == 1);
  CHECK(on_other);
  CHECK(got == std::optional<int>(5));
}

// ---------------------------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("stalled_monitor: a read cancelled through its slot completes with operation_aborted and loses no item",
                   "", byte_kind, typed_kind<int>, user_kind) {
  const auto type = GENERATE(asio::cancellation_type::terminal, asio::cancellation_type::partial,
                             asio::cancellation_type::total);
  enum class phase { waiting, timeout_pending, throttled };
  const auto where = GENERATE(phase::waiting, phase::timeout_pending, phase::throttled);
  CAPTURE(static_cast<unsigned>(type), static_cast<int>(where));

  asio::io_context ctx;
  source<TestType> src(ctx);
  bytecast::stalled_monitor m{src.stream()};
  std::vector<item> got;
  if (where == phase::timeout_pending) m.with_timeout(30s);
  if (where == phase::throttled) {
    m.with_throttle(300ms);
    src.write(0);
    got.push_back(read_one<TestType>(ctx, m).got);  // the next read waits for the throttle
  }

  asio::cancellation_signal sig;
  monitored<TestType> r;
  const auto start = clock_type::now();
  m.async_next(asio::bind_cancellation_slot(sig.slot(), r.handler()));
  ctx.restart();
  ctx.poll();
  REQUIRE(r.calls == 0);
  sig.emit(type);
  CHECK(r.calls == 0);  // not inline
  run_until(ctx, [&] { return r.calls > 0; });
  CHECK(r.ec == asio::error::operation_aborted);
  CHECK(r.got.what == item::aborted);
  CHECK(r.at - start < 10s);  // promptly, not at the end of the timeout

  src.write(1);
  src.write(2);
  got.push_back(read_one<TestType>(ctx, m).got);
  got.push_back(read_one<TestType>(ctx, m).got);
  std::vector<item> expected;
  if (where == phase::throttled) expected.push_back({item::value, 0, {}});
  expected.push_back({item::value, 1, {}});
  expected.push_back({item::value, 2, {}});
  CHECK(got == expected);

  // A signal emitted after the read completed has no effect on the next one.
  sig.emit(type);
  monitored<TestType> after;
  m.async_next(asio::bind_cancellation_slot(sig.slot(), after.handler()));
  src.write(3);
  run_until(ctx, [&] { return after.calls > 0; });
  CHECK(after.got == item{item::value, 3, {}});
  src.close();
  CHECK(read_one<TestType>(ctx, m).got.what == item::end);
}

TEMPLATE_TEST_CASE("stalled_monitor: a cancellation racing a ready item loses no item", "", byte_kind, typed_kind<int>,
                   user_kind) {
  const auto type = GENERATE(asio::cancellation_type::terminal, asio::cancellation_type::partial,
                             asio::cancellation_type::total);
  CAPTURE(static_cast<unsigned>(type));
  asio::io_context ctx;
  source<TestType> src(ctx);
  bytecast::stalled_monitor m{src.stream()};
  m.with_timeout(1ms);

  std::vector<int> values;
  int aborted = 0;
  for (int i = 0; i < 100; ++i) {
    src.write(i);
    asio::cancellation_signal sig;
    monitored<TestType> r;
    m.async_next(asio::bind_cancellation_slot(sig.slot(), r.handler()));
    // Emitted after a varying number of handlers ran: before, during or after the inner read.
    ctx.restart();
    for (int k = 0; k < i % 6; ++k) ctx.poll_one();
    if (r.calls == 0) sig.emit(type);
    run_until(ctx, [&] { return r.calls > 0; });
    if (r.got.what == item::value) {
      values.push_back(r.got.v);
    } else {
      CHECK(r.got.what == item::aborted);
      ++aborted;
    }
  }
  src.close();
  for (int guard = 0; guard < 1000; ++guard) {
    auto r = read_one<TestType>(ctx, m);
    if (r.got.what == item::end) break;
    if (r.got.what == item::value) values.push_back(r.got.v);
  }
  INFO("aborted reads: " << aborted);
  CHECK(mismatch(values, 100) == "");
}

TEMPLATE_TEST_CASE("stalled_monitor: a read raced by a timer with || loses no item", "", byte_kind, typed_kind<int>,
                   user_kind) {
  asio::io_context ctx;
  source<TestType> src(ctx);
  // Its own timeout is longer than the || timer: the || cancels it most of the time.
  auto m = bytecast::stalled_monitor{src.stream()}.with_timeout(2ms).with_throttle(1ms);

  asio::steady_timer writer_timer(ctx);
  int next = 0;
  std::function<void()> write_next = [&] {
    writer_timer.expires_after(3ms);
    writer_timer.async_wait([&](bytecast::error_code) {
      if (next < 100) {
        src.write(next++);
        write_next();
      } else {
        src.close();
      }
    });
  };
  write_next();

  struct outcome {
    std::vector<int> values;
    int raced = 0;
    int timed_out = 0;
    bool ended = false;
    std::string error;
  };
  auto got = run_coro(ctx, [&]() -> asio::awaitable<outcome> {
    outcome out;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (int guard = 0; guard < 100000; ++guard) {
      timer.expires_after(guard % 3 == 0 ? 0ms : 1ms);
      auto r = co_await (m.async_next(as_tuple(asio::use_awaitable)) || timer.async_wait(asio::use_awaitable));
      if (r.index() == 1) {
        ++out.raced;
        continue;
      }
      auto [ec, v] = std::get<0>(std::move(r));
      const item i = decode<TestType>(ec, v);
      if (i.what == item::timed_out) {
        ++out.timed_out;
      } else if (i.what == item::end) {
        out.ended = true;
        break;
      } else if (i.what == item::value) {
        out.values.push_back(i.v);
      } else {
        out.error = describe(i);
        break;
      }
    }
    co_return out;
  }());
  INFO("raced: " << got.raced << ", timed out: " << got.timed_out << ", error: " << got.error);
  CHECK(got.error.empty());
  CHECK(got.ended);
  CHECK(mismatch(got.values, 100) == "");
  CHECK(got.raced > 0);  // the || timer did win some races
}

TEMPLATE_TEST_CASE("stalled_monitor: a read raced by an already expired timer with || loses no item", "", byte_kind,
                   typed_kind<int>, user_kind) {
  asio::io_context ctx;
  source<TestType> src(ctx);
  bytecast::stalled_monitor m{src.stream()};
  struct outcome {
    std::vector<int> values;
    int raced = 0;
    std::string error;
  };
  auto got = run_coro(ctx, [&]() -> asio::awaitable<outcome> {
    outcome out;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    // The item is queued before each read, and the timer is already due: whichever wins, the
    // item is either returned by this read or still there for a later one.
    for (int i = 0; i < 50; ++i) {
      src.write(i);
      timer.expires_after(0ms);
      auto r = co_await (m.async_next(as_tuple(asio::use_awaitable)) || timer.async_wait(asio::use_awaitable));
      if (r.index() == 1) {
        ++out.raced;
        continue;
      }
      auto [ec, v] = std::get<0>(std::move(r));
      const item it = decode<TestType>(ec, v);
      if (it.what != item::value) {
        out.error = describe(it);
        co_return out;
      }
      out.values.push_back(it.v);
    }
    src.close();
    for (int guard = 0; guard < 1000; ++guard) {  // what the raced reads left behind
      auto [ec, v] = co_await m.async_next(as_tuple(asio::use_awaitable));
      const item it = decode<TestType>(ec, v);
      if (it.what == item::end) co_return out;
      if (it.what != item::value) {
        out.error = describe(it);
        co_return out;
      }
      out.values.push_back(it.v);
    }
    out.error = "no end";
    co_return out;
  }());
  INFO("raced: " << got.raced);
  CHECK(got.error.empty());
  CHECK(mismatch(got.values, 50) == "");
}

// ---------------------------------------------------------------------------------------------
// A multi-threaded io_context
// ---------------------------------------------------------------------------------------------

// How one reader of the multi-threaded tests reads its monitor.
struct reader_style {
  bool on_strand;  // the reader's coroutine runs on its own strand
  bool throttled;  // the monitor has a (tiny) throttle besides its 1 ms timeout
  bool raced;      // every read is raced by a 1 ms timer with ||
};

// Readers in the given styles, each with its own monitor (1 ms timeout), read everything a
// writer thread writes (with silences, so timeouts fire) on a 3-thread io_context; the writer is
// then destroyed. Checks that every reader got every item exactly once, in order, then the end.
template <class Kind>
void check_multithreaded_readers(const std::vector<reader_style>& styles) {
  constexpr int count = 400;
  constexpr int threads = 3;
  asio::io_context ctx;
  std::optional<source<Kind>> src(std::in_place, ctx);

  struct reader {
    reader_style how;
    std::vector<int> values;
    int timeouts = 0;
    bool ended = false;
    std::string error;
  };
  std::vector<reader> readers;
  for (const auto& how : styles) readers.push_back(reader{how, {}, 0, false, {}});

  auto read_all = [](monitor_for<Kind> m, reader& rd) -> asio::awaitable<void> {
    try {
      asio::steady_timer timer(co_await asio::this_coro::executor);
      for (int guard = 0; guard < 1000000; ++guard) {
        item i;
        if (rd.how.raced) {
          timer.expires_after(1ms);
          auto r = co_await (m.async_next(as_tuple(asio::use_awaitable)) || timer.async_wait(asio::use_awaitable));
          if (r.index() == 1) continue;
          auto [ec, v] = std::get<0>(std::move(r));
          i = decode<Kind>(ec, v);
        } else {
          auto [ec, v] = co_await m.async_next(as_tuple(asio::use_awaitable));
          i = decode<Kind>(ec, v);
        }
        if (i.what == item::timed_out) {
          ++rd.timeouts;
        } else if (i.what == item::value) {
          rd.values.push_back(i.v);
        } else if (i.what == item::end) {
          rd.ended = true;
          co_return;
        } else {
          rd.error = describe(i);
          co_return;
        }
      }
      rd.error = "too many reads";
    } catch (const std::exception& e) {
      rd.error = e.what();
    }
  };

  for (auto& rd : readers) {
    auto m = bytecast::stalled_monitor{src->stream()}.with_timeout(1ms);
    if (rd.how.throttled) m.with_throttle(100us);
    if (rd.how.on_strand)
      asio::co_spawn(asio::make_strand(ctx), read_all(std::move(m), rd), asio::detached);
    else
      asio::co_spawn(ctx, read_all(std::move(m), rd), asio::detached);
  }

  std::vector<std::thread> io;
  for (int i = 0; i < threads; ++i) io.emplace_back([&] { ctx.run_for(120s); });
  std::thread writer([&] {
    for (int i = 0; i < count; ++i) {
      src->write(i);
      if (i % 50 == 49) std::this_thread::sleep_for(5ms);  // silences: the timeouts fire
    }
    src.reset();  // closes by destruction
  });
  writer.join();
  for (auto& t : io) t.join();
  REQUIRE(ctx.stopped());  // every reader saw the end before the deadline

  for (const auto& rd : readers) {
    CAPTURE(rd.how.on_strand, rd.how.throttled, rd.how.raced, rd.timeouts);
    CHECK(rd.error.empty());
    CHECK(rd.ended);
    CHECK(mismatch(rd.values, count) == "");
  }
}

TEMPLATE_TEST_CASE("stalled_monitor: monitors on a multi-threaded io_context lose and duplicate nothing", "",
                   byte_kind, typed_kind<int>, user_kind) {
  check_multithreaded_readers<TestType>({{false, false, false}, {true, false, false}, {false, true, false},
                                         {true, true, false}});
}

// Readers raced by a timer are on strands: the no-loss rule holds when the reader's completions
// are serialised with the cancellation (API.md section 1, async_next protocol, rule 4).
TEMPLATE_TEST_CASE("stalled_monitor: monitors raced by a timer with || on a multi-threaded io_context lose nothing",
                   "", byte_kind, typed_kind<int>, user_kind) {
  check_multithreaded_readers<TestType>({{true, false, true}, {true, true, true}});
}
