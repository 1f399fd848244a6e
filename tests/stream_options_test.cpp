// Tests for API.md section 6 (stream_options in options.hpp; stream(options), close(reason),
// async_wait_for_streams, async_wait_no_streams and stream_count() of the writers in
// byte_writer.hpp and typed.hpp): per-stream limits and policies on one writer, closing with a
// reason on every read path, and waiting for demand. Every rule is checked for byte and typed
// writers alike.
#include "test_util.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

using namespace bytecast_test;
using namespace asio::experimental::awaitable_operators;
using bytecast::overflow_policy;
using bytecast::stream_options;

namespace {

// A reason a feed failed, as a producer would pass to close(reason).
const bytecast::error_code feed_failed = make_error_code(asio::error::connection_reset);

// What one read reported, for byte and typed streams alike: a value, the end (sentinel), or an error.
struct event {
  bytecast::error_code ec;
  std::optional<int> value;
  bool operator==(const event&) const = default;
};

event value(int v) { return {{}, v}; }
const event sentinel{{}, std::nullopt};
event failure(bytecast::error_code ec) { return {ec, std::nullopt}; }

}  // namespace

namespace Catch {
template <>
struct StringMaker<event> {
  static std::string convert(const event& e) {
    if (e.ec) return "<" + StringMaker<bytecast::error_code>::convert(e.ec) + ">";
    return e.value ? std::to_string(*e.value) : std::string("<sentinel>");
  }
};
}  // namespace Catch

namespace {

// One async_next on the single-threaded context; checks it did not complete inline.
template <class Kind>
event next(asio::io_context& ctx, typename Kind::stream& s) {
  std::optional<event> got;
  s.async_next([&](bytecast::error_code ec, auto v) { got = event{ec, Kind::number(ec, v)}; });
  REQUIRE_FALSE(got);
  run_all(ctx, 30s);
  REQUIRE(got);
  return *got;
}

template <class Kind>
event try_event(typename Kind::stream& s) {
  bytecast::error_code ec;
  const auto v = Kind::try_next(s, ec);
  return {ec, v};
}

template <class Kind>
std::vector<event> next_n(asio::io_context& ctx, typename Kind::stream& s, int n) {
  std::vector<event> out;
  for (int i = 0; i < n; ++i) out.push_back(next<Kind>(ctx, s));
  return out;
}

std::vector<event> values(int from, int to) { return sequence(from, to, value); }

// The result of a wait for streams, seeded so that an inline completion shows.
struct wait_result {
  int calls = 0;
  bytecast::error_code ec = not_called;
  auto handler() {
    return [this](bytecast::error_code e) {
      ++calls;
      ec = e;
    };
  }
};

template <class Writer>
void wait_for(Writer& w, std::size_t n, wait_result& r) {
  w.async_wait_for_streams(n, r.handler());
}
template <class Writer>
void wait_none(Writer& w, wait_result& r) {
  w.async_wait_no_streams(r.handler());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// stream(options): a limit and a policy per stream
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("stream options: on one writer a full wait stream holds writes back, while full drop_oldest and "
                   "disconnect streams drop or are cut off and never hold anything back",
                   "[options]", byte_int_kind, typed_int_kind) {
  constexpr std::size_t two = 2 * TestType::weight;
  asio::io_context ctx;
  typename TestType::writer w(ctx);  // unbounded: every limit here is the stream's own
  auto waits = w.stream({.queue_limit = two, .on_overflow = overflow_policy::wait});
  auto drops = w.stream({.queue_limit = two, .on_overflow = overflow_policy::drop_oldest});
  auto cuts = w.stream({.queue_limit = two, .on_overflow = overflow_policy::disconnect});

  TestType::write(w, 1);
  TestType::write(w, 2);
  // `waits` is full: a synchronous write fails with would_block and reaches nobody.
  try {
    TestType::write(w, 3);
    FAIL("the write went through a full wait stream");
  } catch (const bytecast::system_error& e) {
    CHECK(e.code() == asio::error::would_block);
  }
  CHECK(TestType::queued(drops) == 2);
  CHECK(TestType::queued(cuts) == 2);

  // Room made in `waits`: the next writes go through; `drops` drops, `cuts` is cut off.
  CHECK(next_n<TestType>(ctx, waits, 2) == values(1, 3));
  TestType::write(w, 3);
  TestType::write(w, 4);
  CHECK(next_n<TestType>(ctx, waits, 2) == values(3, 5));
  CHECK(next_n<TestType>(ctx, drops, 3) == std::vector<event>{failure(bytecast::error::lagged)} + values(3, 5));
  CHECK(drops.dropped() == two);
  CHECK(next_n<TestType>(ctx, cuts, 3) == values(1, 3) + std::vector<event>{failure(bytecast::error::overflowed)});
  CHECK(w.stream_count() == 2);
}

TEMPLATE_TEST_CASE("stream options: unread drop_oldest and disconnect streams never hold back synchronous or "
                   "asynchronous writes while the bounded wait stream has room",
                   "[options]", byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx);
  auto archive = w.stream({.queue_limit = 100 * TestType::weight, .on_overflow = overflow_policy::wait});
  auto viewer = w.stream({.queue_limit = 2 * TestType::weight, .on_overflow = overflow_policy::drop_oldest});
  auto cut = w.stream({.queue_limit = 2 * TestType::weight, .on_overflow = overflow_policy::disconnect});

  for (int i = 0; i < 25; ++i) TestType::write(w, i);
  int completed = 0;
  for (int i = 25; i < 50; ++i)
    TestType::async_write(w, i, [&](bytecast::error_code ec, auto&&...) {
      CHECK_FALSE(ec);
      ++completed;
    });
  run_all(ctx);
  CHECK(completed == 25);

  CHECK(next_n<TestType>(ctx, archive, 50) == values(0, 50));
  CHECK(next_n<TestType>(ctx, viewer, 3) == std::vector<event>{failure(bytecast::error::lagged)} + values(48, 50));
  CHECK(viewer.dropped() == 48 * TestType::weight);
  CHECK(next_n<TestType>(ctx, cut, 3) == values(0, 2) + std::vector<event>{failure(bytecast::error::overflowed)});
  CHECK(w.stream_count() == 2);
}

TEMPLATE_TEST_CASE("stream options: a stream's own limit and policy override the writer's, unset ones take the "
                   "writer's",
                   "[options]", byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx, {.queue_limit = 2 * TestType::weight, .on_overflow = overflow_policy::drop_oldest});
  auto inherits = w.stream();
  auto inherits_too = w.stream({});
  auto unbounded = w.stream({.queue_limit = 0});
  auto cut = w.stream({.on_overflow = overflow_policy::disconnect});  // the writer's limit
  auto roomier = w.stream({.queue_limit = 5 * TestType::weight});    // the writer's policy

  for (int i = 0; i < 6; ++i) TestType::write(w, i);
  const auto lagged = std::vector<event>{failure(bytecast::error::lagged)};
  CHECK(next_n<TestType>(ctx, inherits, 3) == lagged + values(4, 6));
  CHECK(next_n<TestType>(ctx, inherits_too, 3) == lagged + values(4, 6));
  CHECK(next_n<TestType>(ctx, unbounded, 6) == values(0, 6));
  CHECK(next_n<TestType>(ctx, cut, 3) == values(0, 2) + std::vector<event>{failure(bytecast::error::overflowed)});
  CHECK(next_n<TestType>(ctx, roomier, 6) == lagged + values(1, 6));
}

TEMPLATE_TEST_CASE("stream options: a queue_limit of 0 is unbounded whatever the policy, and never holds a bounded "
                   "writer back",
                   "[options]", byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx, {.queue_limit = 1 * TestType::weight, .on_overflow = overflow_policy::wait});
  auto s = w.stream({.queue_limit = 0, .on_overflow = overflow_policy::disconnect});
  auto t = w.stream({.queue_limit = 0});  // the writer's wait policy, but unbounded
  for (int i = 0; i < 100; ++i) TestType::write(w, i);  // would throw would_block if anything held it back
  CHECK(w.stream_count() == 2);
  CHECK(next_n<TestType>(ctx, s, 100) == values(0, 100));
  CHECK(next_n<TestType>(ctx, t, 100) == values(0, 100));
}

TEMPLATE_TEST_CASE("stream options: stream() is stream({}) and stream(replay) is stream({.replay = true})",
                   "[options]", byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx, {.replay_limit = 3 * TestType::weight});
  for (int i = 0; i < 5; ++i) TestType::write(w, i);
  auto a = w.stream(bytecast::replay);
  auto b = w.stream({.replay = true});
  auto c = w.stream();
  auto d = w.stream({});
  TestType::write(w, 5);
  w.close();
  CHECK(next_n<TestType>(ctx, a, 5) == values(2, 6) + std::vector<event>{sentinel});
  CHECK(next_n<TestType>(ctx, b, 5) == values(2, 6) + std::vector<event>{sentinel});
  CHECK(next_n<TestType>(ctx, c, 2) == values(5, 6) + std::vector<event>{sentinel});
  CHECK(next_n<TestType>(ctx, d, 2) == values(5, 6) + std::vector<event>{sentinel});
}

TEMPLATE_TEST_CASE("stream options: replayed items are queued whatever the stream's limit, which applies from the "
                   "next write",
                   "[options]", byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx, {.replay_limit = 10 * TestType::weight});
  for (int i = 0; i < 10; ++i) TestType::write(w, i);

  SECTION("wait: the replayed backlog makes the stream full") {
    auto s = w.stream({.queue_limit = 2 * TestType::weight, .on_overflow = overflow_policy::wait, .replay = true});
    CHECK(TestType::queued(s) == 10);
    CHECK_THROWS_AS(TestType::write(w, 10), bytecast::system_error);
    CHECK(next_n<TestType>(ctx, s, 10) == values(0, 10));
    TestType::write(w, 10);
    CHECK(next<TestType>(ctx, s) == value(10));
  }
  SECTION("drop_oldest: the next write drops what no longer fits") {
    auto s = w.stream({.queue_limit = 2 * TestType::weight, .on_overflow = overflow_policy::drop_oldest, .replay = true});
    CHECK(TestType::queued(s) == 10);
    TestType::write(w, 10);
    CHECK(next_n<TestType>(ctx, s, 3) == std::vector<event>{failure(bytecast::error::lagged)} + values(9, 11));
  }
}

TEST_CASE("stream options: a typed writer given a position or sync-point alignment throws invalid_argument and "
          "makes no stream",
          "[options]") {
  asio::io_context ctx;
  bytecast::typed_writer<int> w(ctx);
  for (const auto& o : {stream_options{.from_position = 0}, stream_options{.align_to_sync_points = true}}) {
    try {
      [[maybe_unused]] auto s = w.stream(o);
      FAIL("a stream was made");
    } catch (const bytecast::system_error& e) {
      CHECK(e.code() == asio::error::invalid_argument);
    }
    CHECK(w.stream_count() == 0);
  }
}

TEMPLATE_TEST_CASE("stream options: under concurrent writes a wait stream read on another thread paces the writer "
                   "while unread drop_oldest and disconnect streams never stop it",
                   "[options][concurrency]", byte_int_kind, typed_int_kind) {
  constexpr int count = 2000;
  asio::io_context ctx;
  typename TestType::writer w(ctx);
  auto archive = w.stream({.queue_limit = 8 * TestType::weight, .on_overflow = overflow_policy::wait});
  auto viewer = w.stream({.queue_limit = 4 * TestType::weight, .on_overflow = overflow_policy::drop_oldest});
  auto cut = w.stream({.queue_limit = 4 * TestType::weight, .on_overflow = overflow_policy::disconnect});

  // The archive's reader: a coroutine on a 2-thread io_context.
  std::vector<int> archived;
  bool ended = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          const auto v = co_await TestType::next(archive);
          if (!v) break;
          archived.push_back(*v);
        }
        ended = true;
      },
      rethrow{});
  std::thread io1([&] { ctx.run_for(120s); });
  std::thread io2([&] { ctx.run_for(120s); });

  // Two writer threads, each waiting for room with async_write.
  auto writer = [&](int first) {
    for (int i = first; i < count; i += 2) TestType::async_write(w, i, asio::use_future).get();
  };
  std::thread w1(writer, 0);
  std::thread w2(writer, 1);
  w1.join();
  w2.join();
  w.close();
  io1.join();
  io2.join();

  CHECK(ended);
  REQUIRE(archived.size() == static_cast<std::size_t>(count));
  std::vector<int> sorted = archived;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < count; ++i) CHECK(sorted[static_cast<std::size_t>(i)] == i);
  CHECK(TestType::queued(viewer) <= 4);
  CHECK(viewer.dropped() == static_cast<std::uint64_t>(count - 4) * TestType::weight);
  CHECK(w.stream_count() == 2);  // the archive and the viewer; `cut` was cut off
  static_cast<void>(cut);
}

// ---------------------------------------------------------------------------------------------
// close(reason)
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("close(reason): after the backlog every further async_next completes with the reason, never "
                   "the sentinel or eof",
                   "[close]", byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx);
  auto s = w.stream();
  TestType::write(w, 1);
  TestType::write(w, 2);
  w.close(feed_failed);
  CHECK_FALSE(w.is_open());
  CHECK(next_n<TestType>(ctx, s, 5) == values(1, 3) + std::vector<event>(3, failure(feed_failed)));
}

TEMPLATE_TEST_CASE("close(reason): a parked read completes with the reason when the writer closes", "[close]",
                   byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx);
  auto s = w.stream();
  std::optional<event> got;
  s.async_next([&](bytecast::error_code ec, auto v) { got = event{ec, TestType::number(ec, v)}; });
  poll(ctx);
  REQUIRE_FALSE(got);
  w.close(feed_failed);
  CHECK_FALSE(got);  // not inside close()
  run_all(ctx);
  REQUIRE(got);
  CHECK(*got == failure(feed_failed));
}

TEMPLATE_TEST_CASE("close(reason): try_next gives the backlog, then the reason on every call", "[close]", byte_int_kind,
                   typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx);
  auto s = w.stream();
  CHECK(try_event<TestType>(s) == failure(asio::error::would_block));
  TestType::write(w, 7);
  w.close(feed_failed);
  CHECK(try_event<TestType>(s) == value(7));
  CHECK(try_event<TestType>(s) == failure(feed_failed));
  CHECK(try_event<TestType>(s) == failure(feed_failed));
}

TEST_CASE("close(reason): async_next_chunk and async_read_some complete with the reason after the backlog, "
          "async_read stops on it instead of eof",
          "[close]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto chunks = w.stream();
  auto bytes = w.stream();
  auto all = w.stream();
  w.write("hello");
  w.close(feed_failed);

  next_result c;
  chunks.async_next_chunk(c.chunk_handler());
  run_all(ctx);
  CHECK(c.data == "hello");
  next_result c2;
  chunks.async_next_chunk(c2.chunk_handler());
  run_all(ctx);
  CHECK(c2.ec == feed_failed);
  CHECK(c2.empty_span);

  std::array<char, 3> buf{};
  std::string got;
  for (int i = 0; i < 3; ++i) {
    size_result r;
    bytes.async_read_some(asio::buffer(buf), r.handler());
    run_all(ctx);
    REQUIRE(r.calls == 1);
    if (i < 2) {
      CHECK_FALSE(r.ec);
      got.append(buf.data(), r.n);
    } else {
      CHECK(r.ec == feed_failed);
      CHECK(r.n == 0);
    }
  }
  CHECK(got == "hello");

  std::string everything;
  bytecast::error_code read_ec = not_called;
  asio::async_read(all, asio::dynamic_buffer(everything), [&](bytecast::error_code ec, std::size_t) { read_ec = ec; });
  run_all(ctx);
  CHECK(read_ec == feed_failed);
  CHECK(everything == "hello");
}

TEMPLATE_TEST_CASE("close(reason): a stream made afterwards gets the replay, then the reason", "[close]", byte_int_kind,
                   typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx, {.replay_limit = 2 * TestType::weight});
  for (int i = 0; i < 3; ++i) TestType::write(w, i);
  w.close(feed_failed);
  auto late = w.stream(bytecast::replay);
  auto live = w.stream();
  CHECK(next_n<TestType>(ctx, late, 4) == values(1, 3) + std::vector<event>(2, failure(feed_failed)));
  CHECK(next<TestType>(ctx, live) == failure(feed_failed));
  CHECK(w.stream_count() == 0);
}

TEMPLATE_TEST_CASE("close(reason): close({}) is close(), and only the first close counts", "[close]", byte_int_kind,
                   typed_int_kind) {
  asio::io_context ctx;
  SECTION("close({}): the sentinel, then eof") {
    typename TestType::writer w(ctx);
    auto s = w.stream();
    w.close(bytecast::error_code{});
    CHECK(next_n<TestType>(ctx, s, 2) == std::vector<event>{sentinel, failure(asio::error::eof)});
  }
  SECTION("close() then close(reason): the sentinel") {
    typename TestType::writer w(ctx);
    auto s = w.stream();
    w.close();
    w.close(feed_failed);
    CHECK(next_n<TestType>(ctx, s, 2) == std::vector<event>{sentinel, failure(asio::error::eof)});
  }
  SECTION("close(reason) then close() or another reason: the first reason") {
    typename TestType::writer w(ctx);
    auto s = w.stream();
    w.close(feed_failed);
    w.close();
    w.close(make_error_code(asio::error::timed_out));
    CHECK(next_n<TestType>(ctx, s, 2) == std::vector<event>(2, failure(feed_failed)));
    auto later = w.stream();
    CHECK(next<TestType>(ctx, later) == failure(feed_failed));
  }
}

TEMPLATE_TEST_CASE("close(reason): waiting writes complete with broken_pipe, later writes fail with broken_pipe",
                   "[close]", byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx, {.queue_limit = 1 * TestType::weight});
  auto s = w.stream();
  TestType::write(w, 1);
  bytecast::error_code parked = not_called;
  TestType::async_write(w, 2, [&](bytecast::error_code ec, auto&&...) { parked = ec; });
  poll(ctx);
  CHECK(parked == not_called);  // waiting for room
  w.close(feed_failed);
  run_all(ctx);
  CHECK(parked == asio::error::broken_pipe);
  try {
    TestType::write(w, 3);
    FAIL("a write after close went through");
  } catch (const bytecast::system_error& e) {
    CHECK(e.code() == asio::error::broken_pipe);
  }
  CHECK(next_n<TestType>(ctx, s, 2) == std::vector<event>{value(1), failure(feed_failed)});
}

// ---------------------------------------------------------------------------------------------
// async_wait_for_streams, async_wait_no_streams, stream_count()
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("async_wait_for_streams: completes once n streams are live, never inline, also when they "
                   "already are",
                   "[demand]", byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx);

  wait_result two;
  wait_for(w, 2, two);
  CHECK(two.calls == 0);
  auto a = w.stream();
  poll(ctx);
  CHECK(two.calls == 0);
  auto b = w.stream();
  CHECK(two.calls == 0);  // not inside stream()
  run_all(ctx);
  CHECK(two.calls == 1);
  CHECK_FALSE(two.ec);

  wait_result already;
  wait_for(w, 1, already);
  CHECK(already.calls == 0);  // satisfied, but not inline
  run_all(ctx);
  CHECK(already.calls == 1);
  CHECK_FALSE(already.ec);

  wait_result zero;
  wait_for(w, 0, zero);
  CHECK(zero.calls == 0);
  run_all(ctx);
  CHECK(zero.calls == 1);
  CHECK_FALSE(zero.ec);
}

TEMPLATE_TEST_CASE("async_wait_no_streams: completes once no stream is live; the last stream's destructor posts it "
                   "before it returns, never inline",
                   "[demand]", byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx);

  wait_result none_yet;
  wait_none(w, none_yet);
  CHECK(none_yet.calls == 0);
  run_all(ctx);
  CHECK(none_yet.calls == 1);
  CHECK_FALSE(none_yet.ec);

  auto a = std::make_unique<typename TestType::stream>(w.stream());
  auto b = std::make_unique<typename TestType::stream>(w.stream());
  wait_result last;
  wait_none(w, last);
  a.reset();
  poll(ctx);
  CHECK(last.calls == 0);
  std::thread other([&] { b.reset(); });  // the last one, on another thread
  other.join();
  CHECK(last.calls == 0);  // posted, not run inside the destructor
  CHECK(poll(ctx) >= 1);   // already queued when the destructor returned
  CHECK(last.calls == 1);
  CHECK_FALSE(last.ec);
}

TEMPLATE_TEST_CASE("async_wait_no_streams: a stream cut off by disconnect stops being live; the write that cut it "
                   "off posts the completion before it returns",
                   "[demand]", byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx);
  auto s = w.stream({.queue_limit = 1 * TestType::weight, .on_overflow = overflow_policy::disconnect});
  wait_result none;
  wait_none(w, none);
  TestType::write(w, 1);
  poll(ctx);
  CHECK(none.calls == 0);
  CHECK(w.stream_count() == 1);
  TestType::write(w, 2);  // cuts `s` off
  CHECK(w.stream_count() == 0);
  CHECK(none.calls == 0);
  CHECK(poll(ctx) >= 1);
  CHECK(none.calls == 1);
  CHECK_FALSE(none.ec);
  CHECK(next_n<TestType>(ctx, s, 2) == std::vector<event>{value(1), failure(bytecast::error::overflowed)});
}

TEMPLATE_TEST_CASE("stream waits: broken_pipe when the writer closes first or is closed already", "[demand]",
                   byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx);
  auto s = w.stream();
  wait_result more, none;
  wait_for(w, 5, more);
  wait_none(w, none);
  poll(ctx);
  CHECK(more.calls == 0);
  CHECK(none.calls == 0);
  w.close();
  CHECK(more.calls == 0);  // not inside close()
  run_all(ctx);
  CHECK(more.ec == asio::error::broken_pipe);
  CHECK(none.ec == asio::error::broken_pipe);

  wait_result after_for, after_none;
  wait_for(w, 0, after_for);
  wait_none(w, after_none);
  CHECK(after_for.calls == 0);
  run_all(ctx);
  CHECK(after_for.ec == asio::error::broken_pipe);
  CHECK(after_none.ec == asio::error::broken_pipe);
  CHECK(more.calls == 1);
  CHECK(none.calls == 1);
}

TEMPLATE_TEST_CASE("stream waits: a wait cancelled through its slot completes with operation_aborted, once",
                   "[demand]", byte_int_kind, typed_int_kind) {
  const auto type = GENERATE(asio::cancellation_type::terminal, asio::cancellation_type::partial,
                             asio::cancellation_type::total);
  const bool for_none = GENERATE(false, true);
  CAPTURE(static_cast<unsigned>(type), for_none);
  asio::io_context ctx;
  typename TestType::writer w(ctx);
  auto keep = w.stream();  // so that "no streams" does not hold yet
  asio::cancellation_signal sig;
  wait_result r;
  if (for_none)
    w.async_wait_no_streams(asio::bind_cancellation_slot(sig.slot(), r.handler()));
  else
    w.async_wait_for_streams(3, asio::bind_cancellation_slot(sig.slot(), r.handler()));
  poll(ctx);
  REQUIRE(r.calls == 0);
  sig.emit(type);
  CHECK(r.calls == 0);  // not inline
  run_all(ctx);
  CHECK(r.calls == 1);
  CHECK(r.ec == asio::error::operation_aborted);
  // What it waited for happens afterwards: it does not complete again.
  auto b = w.stream();
  auto c = w.stream();
  { auto gone = std::move(keep); }
  w.close();
  run_all(ctx);
  CHECK(r.calls == 1);
}

TEST_CASE("stream waits: work with callbacks and use_awaitable and use_future and deferred and as_tuple and "
          "redirect_error",
          "[demand]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);

  auto f = w.async_wait_for_streams(1, asio::use_future);
  bytecast::error_code redirected = not_called;
  auto coro = asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<std::string> {
        co_await w.async_wait_for_streams(1, asio::use_awaitable);
        auto [ec] = co_await w.async_wait_for_streams(1, as_tuple(asio::use_awaitable));
        co_await w.async_wait_for_streams(1, asio::redirect_error(asio::use_awaitable, redirected));
        co_return ec ? ec.message() : std::string("ok");
      },
      asio::use_future);
  auto op = w.async_wait_no_streams(deferred);
  auto s = std::make_unique<bytecast::byte_stream>(w.stream());
  run_all(ctx);
  // use_future completes on Asio's system executor (another thread): wait for it.
  REQUIRE(f.wait_for(30s) == std::future_status::ready);
  CHECK_NOTHROW(f.get());
  REQUIRE(coro.wait_for(0s) == std::future_status::ready);
  CHECK(coro.get() == "ok");
  CHECK_FALSE(redirected);

  bytecast::error_code deferred_ec = not_called;
  std::move(op)([&](bytecast::error_code ec) { deferred_ec = ec; });  // initiated now
  poll(ctx);
  CHECK(deferred_ec == not_called);
  s.reset();
  run_all(ctx);
  CHECK_FALSE(deferred_ec);
}

TEMPLATE_TEST_CASE("stream waits: a moved-from writer completes them with bad_descriptor", "[demand]", byte_int_kind,
                   typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx);
  auto moved = std::move(w);
  wait_result a, b;
  wait_for(w, 1, a);  // NOLINT(bugprone-use-after-move): a moved-from writer is specified
  wait_none(w, b);
  CHECK(a.calls == 0);
  run_all(ctx);
  CHECK(a.ec == asio::error::bad_descriptor);
  CHECK(b.ec == asio::error::bad_descriptor);
}

TEMPLATE_TEST_CASE("stream_count: a stream destroyed on another thread stops being counted before its destructor "
                   "returns, with no write in between",
                   "[demand]", byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx);
  auto keep = w.stream();
  auto gone = std::make_unique<typename TestType::stream>(w.stream());
  CHECK(w.stream_count() == 2);
  std::thread other([&] { gone.reset(); });
  other.join();
  CHECK(w.stream_count() == 1);
}

TEMPLATE_TEST_CASE("stream waits: streams made and destroyed on other threads satisfy the waits", "[demand]",
                   byte_int_kind, typed_int_kind) {
  constexpr std::size_t per_thread = 200;
  asio::io_context ctx;
  typename TestType::writer w(ctx);
  auto wanted = w.async_wait_for_streams(2 * per_thread, asio::use_future);
  std::vector<typename TestType::stream> made_a, made_b;
  std::thread io([&] { ctx.run_for(60s); });  // keeps running while the wait is pending
  std::thread a([&] {
    for (std::size_t i = 0; i < per_thread; ++i) made_a.push_back(w.stream());
  });
  std::thread b([&] {
    for (std::size_t i = 0; i < per_thread; ++i) made_b.push_back(w.stream());
  });
  a.join();
  b.join();
  REQUIRE(wanted.wait_for(30s) == std::future_status::ready);
  CHECK_NOTHROW(wanted.get());
  io.join();

  auto emptied = w.async_wait_no_streams(asio::use_future);
  std::thread io2([&] { ctx.restart(); ctx.run_for(60s); });
  std::thread c([&] { made_a.clear(); });
  std::thread d([&] { made_b.clear(); });
  c.join();
  d.join();
  REQUIRE(emptied.wait_for(30s) == std::future_status::ready);
  CHECK_NOTHROW(emptied.get());
  io2.join();
  CHECK(w.stream_count() == 0);
}
