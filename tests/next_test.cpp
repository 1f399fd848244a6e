// Tests for API.md section 8: the coroutine loop `co_await s.next()` of byte and typed streams
// (byte_stream.hpp, typed.hpp) and the batched reads async_next_batch / try_next_batch of byte
// streams.
#include "test_util.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace bytecast_test;
using namespace asio::experimental::awaitable_operators;
using bytecast::overflow_policy;

namespace {

const bytecast::error_code feed_failed = make_error_code(asio::error::connection_reset);

// What a next() call gave: a value, the end, or the error it threw.
struct outcome {
  std::optional<int> value;
  bytecast::error_code error;
  bool operator==(const outcome&) const = default;
};

template <class Kind>
asio::awaitable<outcome> next_outcome(typename Kind::stream& s) {
  try {
    co_return outcome{co_await Kind::next(s), {}};
  } catch (const bytecast::system_error& e) {
    co_return outcome{std::nullopt, e.code()};
  }
}

outcome item(int v) { return {v, {}}; }
const outcome end{std::nullopt, {}};
outcome thrown(bytecast::error_code ec) { return {std::nullopt, ec}; }

template <class Kind>
std::vector<outcome> next_n(asio::io_context& ctx, typename Kind::stream& s, int n) {
  return run_coro(ctx, [&]() -> asio::awaitable<std::vector<outcome>> {
    std::vector<outcome> out;
    for (int i = 0; i < n; ++i) out.push_back(co_await next_outcome<Kind>(s));
    co_return out;
  }());
}

std::vector<outcome> items(int from, int to) { return sequence(from, to, item); }

std::vector<std::string> strings(std::span<const asio::const_buffer> buffers) {
  std::vector<std::string> out;
  for (const auto& b : buffers) out.emplace_back(static_cast<const char*>(b.data()), b.size());
  return out;
}

}  // namespace

namespace Catch {
template <>
struct StringMaker<outcome> {
  static std::string convert(const outcome& o) {
    if (o.error) return "<throws " + StringMaker<bytecast::error_code>::convert(o.error) + ">";
    return o.value ? std::to_string(*o.value) : std::string("<end>");
  }
};
}  // namespace Catch

// ---------------------------------------------------------------------------------------------
// next()
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("next(): the items in order, the end once, then eof is thrown", "[next]", byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx);
  auto s = w.stream();
  TestType::write(w, 1);
  TestType::write(w, 2);
  w.close();
  CHECK(next_n<TestType>(ctx, s, 5) ==
        items(1, 3) + std::vector<outcome>{end, thrown(asio::error::eof), thrown(asio::error::eof)});
}

TEMPLATE_TEST_CASE("next(): waits while nothing is queued, and the writer wakes it", "[next]", byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx);
  auto s = w.stream();
  std::optional<std::vector<outcome>> got;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        std::vector<outcome> out;
        for (int i = 0; i < 3; ++i) out.push_back(co_await next_outcome<TestType>(s));
        got = out;
      },
      rethrow{});
  poll(ctx);
  CHECK_FALSE(got);
  TestType::write(w, 1);
  poll(ctx);
  TestType::write(w, 2);
  w.close();
  run_all(ctx);
  REQUIRE(got);
  CHECK(*got == items(1, 3) + std::vector<outcome>{end});
}

TEMPLATE_TEST_CASE("next(): lagged, overflowed and a close reason are thrown; reading goes on after lagged", "[next]",
                   byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx);
  auto drops = w.stream({.queue_limit = 2 * TestType::weight, .on_overflow = overflow_policy::drop_oldest});
  auto cut = w.stream({.queue_limit = 2 * TestType::weight, .on_overflow = overflow_policy::disconnect});
  for (int i = 1; i <= 4; ++i) TestType::write(w, i);
  w.close(feed_failed);
  CHECK(next_n<TestType>(ctx, drops, 4) ==
        std::vector<outcome>{thrown(bytecast::error::lagged)} + items(3, 5) + std::vector<outcome>{thrown(feed_failed)});
  CHECK(next_n<TestType>(ctx, cut, 4) ==
        items(1, 3) + std::vector<outcome>(2, thrown(bytecast::error::overflowed)));
}

TEMPLATE_TEST_CASE("next(): a queued item comes without a trip through the executor: a coroutine posted earlier runs "
                   "only after it",
                   "[next]", byte_int_kind, typed_int_kind) {
  asio::io_context ctx;  // one thread: the order of handlers is the order of the queue
  typename TestType::writer w(ctx);
  auto s = w.stream();
  for (int i = 0; i < 50; ++i) TestType::write(w, i);
  int other_ran = 0;
  std::vector<int> other_ran_at;  // how often the other coroutine had run, at each item
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 50; ++i) {
          auto v = co_await TestType::next(s);
          REQUIRE(v == i);
          other_ran_at.push_back(other_ran);
        }
      },
      rethrow{});
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 100; ++i) {
          ++other_ran;
          co_await asio::post(asio::use_awaitable);
        }
      },
      rethrow{});
  run_all(ctx);
  REQUIRE(other_ran_at.size() == 50);
  // Both coroutines start in the order they were spawned; the reader then never gave way.
  CHECK(std::count(other_ran_at.begin(), other_ran_at.end(), 0) == 50);
}

TEMPLATE_TEST_CASE("next(): a reader with a long backlog lets other coroutines and a timer run: it goes through the "
                   "executor every 64 items",
                   "[next]", byte_int_kind, typed_int_kind) {
  constexpr int backlog = 300'000;
  asio::io_context ctx;  // one thread
  typename TestType::writer w(ctx);
  auto s = w.stream();
  for (int i = 0; i < backlog; ++i) TestType::write(w, i % 10);
  w.close();

  int read = 0;
  int other_ran = 0;
  int longest_run = 0;  // most items read in a row while the other coroutine did not run
  int read_when_timer_fired = -1;
  bool reader_done = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        int last_other = 0, run = 0;
        while (co_await TestType::next(s)) {
          ++read;
          run = other_ran == last_other ? run + 1 : 1;
          last_other = other_ran;
          longest_run = std::max(longest_run, run);
        }
        reader_done = true;
      },
      rethrow{});
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        while (!reader_done) {
          ++other_ran;
          co_await asio::post(asio::use_awaitable);
        }
      },
      rethrow{});
  asio::steady_timer timer(ctx, 1ms);
  timer.async_wait([&](bytecast::error_code) { read_when_timer_fired = read; });
  run_all(ctx, 120s);

  CHECK(read == backlog);
  INFO("the reader never read more than " << longest_run << " items in a row without the other coroutine running");
  CHECK(longest_run <= 64);
  CHECK(other_ran >= backlog / 64);
  INFO("the 1 ms timer fired after " << read_when_timer_fired << " of " << backlog << " items");
  CHECK(read_when_timer_fired >= 0);
  CHECK(read_when_timer_fired < backlog);  // while the backlog was being read, not after it
}

TEMPLATE_TEST_CASE("next(): raced by a timer with ||, the loser takes nothing: a trickling feed arrives whole and "
                   "in order",
                   "[next]", byte_int_kind, typed_int_kind) {
  constexpr int count = 300;
  asio::io_context ctx;
  typename TestType::writer w(ctx);
  auto s = w.stream();
  std::vector<int> got;
  int timeouts = 0;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer timer(co_await asio::this_coro::executor);
        while (static_cast<int>(got.size()) < count) {
          timer.expires_after(std::chrono::microseconds(got.size() % 3 == 0 ? 0 : 500));
          auto r = co_await (TestType::next(s) || timer.async_wait(asio::use_awaitable));
          if (r.index() == 1) {
            ++timeouts;
            continue;
          }
          REQUIRE(std::get<0>(r).has_value());
          got.push_back(*std::get<0>(r));
        }
      },
      rethrow{});
  asio::steady_timer trickle(ctx);
  std::function<void(int)> feed = [&](int i) {
    if (i == count) return;
    TestType::write(w, i % 10);
    trickle.expires_after(std::chrono::microseconds(i % 4 == 0 ? 2000 : 100));
    trickle.async_wait([&, i](bytecast::error_code) { feed(i + 1); });
  };
  feed(0);
  run_all(ctx, 120s);
  REQUIRE(got.size() == static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) CHECK(got[static_cast<std::size_t>(i)] == i % 10);
  CHECK(timeouts > 0);
}

TEMPLATE_TEST_CASE("next(): cancelled through the coroutine's slot while waiting: operation_aborted is thrown and the "
                   "item written later comes with the next call",
                   "[next]", byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx);
  auto s = w.stream();
  asio::cancellation_signal sig;
  std::optional<outcome> first;
  asio::co_spawn(ctx, next_outcome<TestType>(s),
                 asio::bind_cancellation_slot(sig.slot(), [&](std::exception_ptr e, outcome o) {
                   REQUIRE_FALSE(e);
                   first = o;
                 }));
  poll(ctx);
  REQUIRE_FALSE(first);
  sig.emit(asio::cancellation_type::terminal);
  run_all(ctx);
  REQUIRE(first);
  CHECK(*first == thrown(asio::error::operation_aborted));
  TestType::write(w, 7);
  CHECK(next_n<TestType>(ctx, s, 1) == items(7, 8));
}

TEMPLATE_TEST_CASE("next(): cancelled while it goes through the executor on the 64th item in a row: "
                   "operation_aborted is thrown and the item comes with the next call",
                   "[next]", byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx);
  auto s = w.stream();
  for (int i = 0; i < 70; ++i) TestType::write(w, i % 10);
  asio::cancellation_signal sig;
  std::vector<outcome> got;
  std::size_t got_when_cancelled = 0;
  bool done = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        // Queued now, so it runs after the 63 reads that do not give way and before the 64th call
        // comes back from the executor. It emits on the context's thread: newer Asio (Boost 1.81's)
        // forwards a co_spawn cancellation through the coroutine's executor, which is then inline.
        asio::post(ctx, [&] {
          got_when_cancelled = got.size();
          sig.emit(asio::cancellation_type::terminal);
        });
        for (int i = 0; i < 66; ++i) {
          got.push_back(co_await next_outcome<TestType>(s));
          if (got.back().error) co_await asio::this_coro::reset_cancellation_state();
        }
        done = true;
      },
      asio::bind_cancellation_slot(sig.slot(), rethrow{}));
  run_all(ctx);
  CHECK(got_when_cancelled == 63);
  REQUIRE(done);
  std::vector<outcome> expected;
  for (int i = 0; i < 63; ++i) expected.push_back(item(i % 10));
  expected.push_back(thrown(asio::error::operation_aborted));
  for (int i = 63; i < 65; ++i) expected.push_back(item(i % 10));  // the 64th item was not taken
  CHECK(got == expected);
}

TEMPLATE_TEST_CASE("next(): already_started while another read is pending, which it leaves untouched; a moved-from "
                   "stream throws bad_descriptor",
                   "[next]", byte_int_kind, typed_int_kind) {
  asio::io_context ctx;
  typename TestType::writer w(ctx);
  auto s = w.stream();
  int pending_calls = 0;
  s.async_next([&](bytecast::error_code ec, auto) {
    CHECK_FALSE(ec);
    ++pending_calls;
  });
  CHECK(next_n<TestType>(ctx, s, 1) == std::vector<outcome>{thrown(asio::error::already_started)});
  CHECK(pending_calls == 0);
  TestType::write(w, 1);
  run_all(ctx);
  CHECK(pending_calls == 1);

  auto moved = std::move(s);
  CHECK(next_n<TestType>(ctx, s, 1) == std::vector<outcome>{thrown(asio::error::bad_descriptor)});  // NOLINT
}

TEST_CASE("next(): shares the read position with try_next, async_next and async_read_some", "[next]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  for (const char* t : {"one", "two", "three", "four"}) w.write(t);
  auto got = run_coro(ctx, [&]() -> asio::awaitable<std::vector<std::string>> {
    std::vector<std::string> out;
    out.push_back(to_string(co_await s.next()));
    bytecast::error_code ec;
    out.push_back(to_string(s.try_next(ec)));
    std::array<char, 2> buf{};
    const std::size_t n = co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
    out.emplace_back(buf.data(), n);
    out.push_back(to_string(co_await s.next()));  // the unread rest of "three"
    out.push_back(to_string(co_await s.async_next(asio::use_awaitable)));
    co_return out;
  }());
  CHECK(got == std::vector<std::string>{"one", "two", "th", "ree", "four"});
}

// ---------------------------------------------------------------------------------------------
// async_next_batch, try_next_batch
// ---------------------------------------------------------------------------------------------

TEST_CASE("next batch: every queued chunk, oldest first, up to max_bytes; one chunk larger than max_bytes comes "
          "whole",
          "[batch]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  for (const char* t : {"aa", "bbb", "c", "0123456789", "d"}) w.write(t);

  std::vector<std::vector<std::string>> got;
  for (int i = 0; i < 4; ++i) {
    std::optional<std::vector<std::string>> one;
    s.async_next_batch(5, [&](bytecast::error_code ec, std::span<const asio::const_buffer> b) {
      CHECK_FALSE(ec);
      one = strings(b);
    });
    CHECK_FALSE(one);  // never inline
    run_all(ctx);
    REQUIRE(one);
    got.push_back(*one);
  }
  CHECK(got == std::vector<std::vector<std::string>>{{"aa", "bbb"}, {"c"}, {"0123456789"}, {"d"}});

  w.write("x");
  bytecast::error_code ec;
  CHECK(strings(s.try_next_batch(0, ec)) == std::vector<std::string>{"x"});  // at least one whole chunk
  CHECK_FALSE(ec);
  CHECK(s.try_next_batch(100, ec).empty());
  CHECK(ec == asio::error::would_block);
}

TEST_CASE("next batch: the sentinel is one empty span, then eof; a close reason after the backlog", "[batch]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto clean = w.stream();
  w.write("last");
  w.close();
  bytecast::error_code ec;
  CHECK(strings(clean.try_next_batch(64, ec)) == std::vector<std::string>{"last"});
  auto b = clean.try_next_batch(64, ec);
  CHECK_FALSE(ec);
  CHECK(b.empty());
  b = clean.try_next_batch(64, ec);
  CHECK(ec == asio::error::eof);

  bytecast::byte_writer broken(ctx);
  auto s = broken.stream();
  broken.write("part");
  broken.close(feed_failed);
  CHECK(strings(s.try_next_batch(64, ec)) == std::vector<std::string>{"part"});
  CHECK(s.try_next_batch(64, ec).empty());
  CHECK(ec == feed_failed);
}

TEST_CASE("next batch: waits while nothing is queued, is woken by the writer, and a cancelled one takes nothing",
          "[batch]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  asio::cancellation_signal sig;
  bytecast::error_code first = not_called;
  s.async_next_batch(64, asio::bind_cancellation_slot(sig.slot(), [&](bytecast::error_code ec, auto) { first = ec; }));
  poll(ctx);
  CHECK(first == not_called);
  sig.emit(asio::cancellation_type::partial);
  run_all(ctx);
  CHECK(first == asio::error::operation_aborted);

  std::vector<std::string> got;
  s.async_next_batch(64, [&](bytecast::error_code ec, std::span<const asio::const_buffer> b) {
    CHECK_FALSE(ec);
    got = strings(b);
  });
  poll(ctx);
  CHECK(got.empty());
  w.write("woken");
  w.write("too");
  run_all(ctx);
  CHECK(got == std::vector<std::string>{"woken", "too"});
}

TEST_CASE("next batch: the buffers stay valid until the next read, whatever the writer does meanwhile", "[batch]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  const auto big = make_bytes(70'000, 3);  // pooled block sizes too
  w.write(big);
  w.write("tail");
  bytecast::error_code ec;
  auto b = s.try_next_batch(1 << 20, ec);
  REQUIRE(b.size() == 2);
  for (int i = 0; i < 100; ++i) w.write(make_bytes(70'000, static_cast<unsigned>(i)));  // churns the block pool
  CHECK(std::equal(big.begin(), big.end(), static_cast<const std::byte*>(b[0].data())));
  CHECK(to_string({static_cast<const std::byte*>(b[1].data()), b[1].size()}) == "tail");
}

TEST_CASE("next batch: on a bounded stream it gathers past the one-at-a-time refill, making room for a waiting "
          "writer, and stops at a drop_oldest gap",
          "[batch]") {
  asio::io_context ctx;
  SECTION("wait") {
    bytecast::byte_writer w(ctx, {.queue_limit = 6});
    auto s = w.stream();
    for (const char* t : {"ab", "cd", "ef"}) w.write(t);
    bytecast::error_code ec;
    CHECK_THROWS(w.write("gh"));  // full
    CHECK(strings(s.try_next_batch(100, ec)) == std::vector<std::string>{"ab", "cd", "ef"});
    w.write("gh");  // room again
  }
  SECTION("drop_oldest") {
    bytecast::byte_writer w(ctx, {.queue_limit = 4, .on_overflow = overflow_policy::drop_oldest});
    auto s = w.stream();
    w.write("ab");
    w.write("cd");
    bytecast::error_code ec;
    CHECK(strings(s.try_next_batch(2, ec)) == std::vector<std::string>{"ab"});
    w.write("ef");
    w.write("gh");  // drops "cd"
    CHECK(s.try_next_batch(100, ec).empty());
    CHECK(ec == bytecast::error::lagged);
    CHECK(strings(s.try_next_batch(100, ec)) == std::vector<std::string>{"ef", "gh"});
  }
}

TEST_CASE("next batch: after a partial async_read_some the batch starts with the unread rest", "[batch]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  w.write("hello");
  w.write("world");
  std::array<char, 2> buf{};
  size_result r;
  s.async_read_some(asio::buffer(buf), r.handler());
  run_all(ctx);
  REQUIRE(r.n == 2);
  bytecast::error_code ec;
  CHECK(strings(s.try_next_batch(100, ec)) == std::vector<std::string>{"llo", "world"});
}
