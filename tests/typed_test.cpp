// Tests for bytecast::basic_typed_writer / basic_typed_stream (typed.hpp): the std::optional<T>
// protocol, try_next, one value per stream, the shared id counter, close and destruction,
// cancellation, inline-completion rules, concurrency, and the minimal requirements on T.
#include "test_util.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <type_traits>
#include <variant>

using namespace bytecast_test;
using namespace asio::experimental::awaitable_operators;

namespace {

// Counts its copies and moves (assignments included). No default constructor.
struct counted {
  struct counters {
    std::atomic<int> copies{0};
    std::atomic<int> moves{0};
  };

  counted(int v, counters* c) : value(v), count(c) {}
  counted(const counted& o) : value(o.value), count(o.count) { ++count->copies; }
  counted(counted&& o) noexcept : value(o.value), count(o.count) { ++count->moves; }
  counted& operator=(const counted& o) {
    value = o.value;
    count = o.count;
    ++count->copies;
    return *this;
  }
  counted& operator=(counted&& o) noexcept {
    value = o.value;
    count = o.count;
    ++count->moves;
    return *this;
  }
  ~counted() = default;

  int value;
  counters* count;
};

// Copyable and movable, assignable, but with no default constructor.
struct no_default {
  explicit no_default(std::string s) : text(std::move(s)) {}
  std::string text;
};

// A value tagged with its writer thread and its position in that thread's sequence.
struct tagged {
  int thread = -1;
  int seq = -1;
  friend bool operator==(const tagged&, const tagged&) = default;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

TEST_CASE("typed_writer: the aliases and member types are as documented") {
  STATIC_REQUIRE(std::is_same_v<bytecast::typed_writer<int>, bytecast::basic_typed_writer<int, asio::any_io_executor>>);
  STATIC_REQUIRE(std::is_same_v<bytecast::typed_stream<int>, bytecast::basic_typed_stream<int, asio::any_io_executor>>);
  STATIC_REQUIRE(std::is_same_v<bytecast::typed_writer<int>::executor_type, asio::any_io_executor>);
  STATIC_REQUIRE(std::is_same_v<bytecast::typed_stream<int>::executor_type, asio::any_io_executor>);
  STATIC_REQUIRE(std::is_same_v<decltype(std::declval<bytecast::typed_writer<int>&>().stream()),
                                bytecast::typed_stream<int>>);
  STATIC_REQUIRE(std::is_same_v<decltype(std::declval<const bytecast::typed_writer<int>&>().id()), std::uint64_t>);
  STATIC_REQUIRE(std::is_same_v<decltype(std::declval<bytecast::typed_stream<int>&>().try_next(
                                    std::declval<bytecast::error_code&>())),
                                std::optional<int>>);
  STATIC_REQUIRE(std::is_same_v<decltype(std::declval<bytecast::typed_writer<int>&>().write(1)), void>);
  STATIC_REQUIRE(std::is_same_v<decltype(std::declval<bytecast::typed_writer<int>&>().write(std::declval<const int&>())),
                                void>);
  // The context constructor is explicit and only takes execution contexts.
  STATIC_REQUIRE(std::is_constructible_v<bytecast::typed_writer<int>, asio::io_context&>);
  STATIC_REQUIRE_FALSE(std::is_convertible_v<asio::io_context&, bytecast::typed_writer<int>>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<bytecast::typed_writer<int>, int&>);
}

TEST_CASE("typed_writer: writer and stream are move-only") {
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<bytecast::typed_writer<int>>);
  STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<bytecast::typed_writer<int>>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<bytecast::typed_writer<int>>);
  STATIC_REQUIRE(std::is_move_assignable_v<bytecast::typed_writer<int>>);
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<bytecast::typed_stream<int>>);
  STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<bytecast::typed_stream<int>>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<bytecast::typed_stream<int>>);
  STATIC_REQUIRE(std::is_move_assignable_v<bytecast::typed_stream<int>>);

  asio::io_context ctx;
  bytecast::typed_writer<int> w(ctx);
  auto s = w.stream();
  w.write(1);
  bytecast::typed_writer<int> moved(std::move(w));  // the streams follow the writer
  moved.write(2);
  bytecast::typed_stream<int> s2(std::move(s));  // the read position follows the stream
  moved.close();
  CHECK(drain(ctx, s2) == std::vector<int>{1, 2});
}

TEST_CASE("typed_writer: the id counter is shared with byte writers") {
  asio::io_context ctx;
  bytecast::byte_writer a(ctx);
  bytecast::typed_writer<int> b(ctx);
  bytecast::byte_writer c(ctx);
  bytecast::typed_writer<std::string> d(ctx.get_executor());
  CHECK(a.id() >= 1);
  CHECK(b.id() == a.id() + 1);
  CHECK(c.id() == b.id() + 1);
  CHECK(d.id() == c.id() + 1);
  auto s = d.stream();
  CHECK(s.writer_id() == d.id());
  CHECK(s.get_executor() == d.get_executor());
}

// ---------------------------------------------------------------------------------------------
// The std::optional<T> protocol
// ---------------------------------------------------------------------------------------------

TEST_CASE("typed_stream: receives values in order, then exactly one nullopt, then eof") {
  asio::io_context ctx;
  bytecast::typed_writer<std::string> w(ctx);
  auto s = w.stream();
  std::vector<std::string> sent;
  for (int i = 0; i < 50; ++i) {
    sent.push_back("value " + std::to_string(i));
    w.write(sent.back());
  }
  w.close();

  for (const auto& expected : sent) {
    auto r = next_now(ctx, s);
    CHECK_FALSE(r.ec);
    REQUIRE(r.value.has_value());
    CHECK(*r.value == expected);
  }
  auto end = next_now(ctx, s);
  CHECK_FALSE(end.ec);
  CHECK_FALSE(end.value.has_value());
  for (int i = 0; i < 3; ++i) {
    auto after = next_now(ctx, s);
    CHECK(after.ec == asio::error::eof);
    CHECK_FALSE(after.value.has_value());
  }
}

TEST_CASE("typed_stream: a late stream sees only values written after it was created") {
  asio::io_context ctx;
  bytecast::typed_writer<int> w(ctx);
  auto early = w.stream();
  w.write(1);
  w.write(2);
  auto late = w.stream();
  w.write(3);
  CHECK(w.stream_count() == 2);
  w.close();
  auto after_close = w.stream();  // yields nullopt at once
  CHECK(drain(ctx, early) == std::vector<int>{1, 2, 3});
  CHECK(drain(ctx, late) == std::vector<int>{3});
  CHECK(drain(ctx, after_close).empty());
  CHECK(next_now(ctx, after_close).ec == asio::error::eof);
}

TEST_CASE("typed_stream: a value read while waiting arrives once the writer writes it") {
  asio::io_context ctx;
  bytecast::typed_writer<int> w(ctx);
  auto s = w.stream();
  typed_result<int> r;
  s.async_next(r.handler());
  poll(ctx);
  CHECK(r.calls == 0);  // nothing queued: the read waits
  w.write(42);
  poll_until(ctx, [&] { return r.calls > 0; });
  CHECK_FALSE(r.ec);
  REQUIRE(r.value.has_value());
  CHECK(*r.value == 42);

  typed_result<int> end;
  s.async_next(end.handler());
  poll(ctx);
  CHECK(end.calls == 0);
  w.close();  // the pending read gets the nullopt
  poll_until(ctx, [&] { return end.calls > 0; });
  CHECK_FALSE(end.ec);
  CHECK_FALSE(end.value.has_value());
}

TEST_CASE("typed_stream: try_next returns queued values, nullopt once, then eof") {
  asio::io_context ctx;
  bytecast::typed_writer<std::string> w(ctx);
  auto s = w.stream();
  w.write("a");
  w.write("b");
  w.close();

  bytecast::error_code ec = not_called;
  auto v = s.try_next(ec);
  CHECK_FALSE(ec);
  REQUIRE(v.has_value());
  CHECK(*v == "a");
  ec = not_called;
  v = s.try_next(ec);
  CHECK_FALSE(ec);
  REQUIRE(v.has_value());
  CHECK(*v == "b");
  ec = not_called;
  v = s.try_next(ec);
  CHECK_FALSE(ec);
  CHECK_FALSE(v.has_value());  // the end, once
  for (int i = 0; i < 3; ++i) {
    ec = not_called;
    v = s.try_next(ec);
    CHECK(ec == asio::error::eof);
    CHECK_FALSE(v.has_value());
  }
  CHECK(poll(ctx) == 0);  // nothing was posted
}

TEST_CASE("typed_stream: try_next reports would_block while nothing is queued") {
  asio::io_context ctx;
  bytecast::typed_writer<int> w(ctx);
  auto s = w.stream();
  bytecast::error_code ec = not_called;
  auto v = s.try_next(ec);
  CHECK(ec == asio::error::would_block);
  CHECK_FALSE(v.has_value());
  v = s.try_next(ec);
  CHECK(ec == asio::error::would_block);  // still nothing, still usable

  w.write(7);
  v = s.try_next(ec);
  CHECK_FALSE(ec);
  REQUIRE(v.has_value());
  CHECK(*v == 7);
  v = s.try_next(ec);
  CHECK(ec == asio::error::would_block);
  CHECK(s.queued_items() == 0);
}

TEST_CASE("typed_stream: try_next while an async_next is pending reports already_started") {
  asio::io_context ctx;
  bytecast::typed_writer<int> w(ctx);
  auto s = w.stream();
  typed_result<int> pending;
  s.async_next(pending.handler());
  poll(ctx);
  REQUIRE(pending.calls == 0);

  bytecast::error_code ec = not_called;
  auto v = s.try_next(ec);
  CHECK(ec == asio::error::already_started);
  CHECK_FALSE(v.has_value());

  w.write(5);
  w.write(6);
  poll_until(ctx, [&] { return pending.calls > 0; });
  REQUIRE(pending.value.has_value());
  CHECK(*pending.value == 5);  // the pending read was left untouched
  v = s.try_next(ec);
  CHECK_FALSE(ec);
  REQUIRE(v.has_value());
  CHECK(*v == 6);
}

TEST_CASE("typed_stream: try_next and async_next share one read position") {
  asio::io_context ctx;
  bytecast::typed_writer<int> w(ctx);
  auto s = w.stream();
  for (int i = 0; i < 6; ++i) w.write(i);
  w.close();
  std::vector<int> got;
  bytecast::error_code ec;
  for (int i = 0; i < 3; ++i) {
    auto v = s.try_next(ec);
    REQUIRE_FALSE(ec);
    REQUIRE(v);
    got.push_back(*v);
    auto r = next_now(ctx, s);
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.value);
    got.push_back(*r.value);
  }
  CHECK(got == std::vector<int>{0, 1, 2, 3, 4, 5});
  auto end = s.try_next(ec);
  CHECK_FALSE(ec);
  CHECK_FALSE(end);
  CHECK(next_now(ctx, s).ec == asio::error::eof);
}

TEST_CASE("typed_stream: the documented drain loop reads everything") {
  asio::io_context ctx;
  bytecast::typed_writer<int> w(ctx);
  auto s = w.stream();
  for (int i = 0; i < 10; ++i) w.write(i);
  auto later = std::make_shared<asio::steady_timer>(ctx, 20ms);
  later->async_wait([&](bytecast::error_code) {
    for (int i = 10; i < 20; ++i) w.write(i);
    w.close();
  });
  auto got = run_coro(ctx, [&]() -> asio::awaitable<std::vector<int>> {
    std::vector<int> out;
    for (;;) {
      bytecast::error_code ec;
      auto v = s.try_next(ec);
      if (ec == asio::error::would_block)
        v = co_await s.async_next(asio::use_awaitable);
      else if (ec)
        break;
      if (!v) break;
      out.push_back(*v);
    }
    co_return out;
  }());
  std::vector<int> expected(20);
  for (int i = 0; i < 20; ++i) expected[static_cast<std::size_t>(i)] = i;
  CHECK(got == expected);
}

// ---------------------------------------------------------------------------------------------
// One value per stream
// ---------------------------------------------------------------------------------------------

TEST_CASE("typed_stream: each stream owns its value") {
  asio::io_context ctx;
  bytecast::typed_writer<std::vector<int>> w(ctx);
  auto a = w.stream();
  auto b = w.stream();
  std::vector<int> original{1, 2, 3};
  w.write(original);
  original.push_back(4);  // the caller's object is not shared with the streams

  bytecast::error_code ec;
  auto va = a.try_next(ec);
  REQUIRE_FALSE(ec);
  REQUIRE(va);
  va->push_back(99);  // a reader modifying its value does not affect the other reader
  auto vb = b.try_next(ec);
  REQUIRE_FALSE(ec);
  REQUIRE(vb);
  CHECK(*va == std::vector<int>{1, 2, 3, 99});
  CHECK(*vb == std::vector<int>{1, 2, 3});
  CHECK(va->data() != vb->data());
}

TEST_CASE("typed_stream: each stream holds its own copy of a shared_ptr, and the writer keeps none") {
  asio::io_context ctx;
  bytecast::typed_writer<std::shared_ptr<int>> w(ctx);
  auto a = w.stream();
  auto b = w.stream();
  auto c = w.stream();
  auto p = std::make_shared<int>(17);
  w.write(p);
  CHECK(p.use_count() == 4);  // the caller's plus one per stream
  {
    bytecast::error_code ec;
    auto va = a.try_next(ec);
    auto vb = b.try_next(ec);
    auto vc = c.try_next(ec);
    REQUIRE(va);
    REQUIRE(vb);
    REQUIRE(vc);
    CHECK(**va == 17);
    CHECK(va->get() == p.get());
    CHECK(p.use_count() == 4);  // moved out of the queues, not copied again
  }
  CHECK(p.use_count() == 1);  // nothing retained by the writer or the streams

  // A destroyed stream releases its queued copies.
  w.write(p);
  CHECK(p.use_count() == 4);
  { auto gone = std::move(a); }
  CHECK(p.use_count() == 3);
}

TEST_CASE("typed_writer: write copies once per stream, and write(T&&) moves into at least one") {
  asio::io_context ctx;
  counted::counters counts;
  auto* counters = &counts;
  bytecast::typed_writer<counted> w(ctx);
  constexpr int streams = 3;
  std::vector<bytecast::typed_stream<counted>> readers;
  for (int i = 0; i < streams; ++i) readers.push_back(w.stream());

  SECTION("an rvalue is moved into one stream and copied for the others") {
    w.write(counted(1, counters));
    CHECK(counters->copies == streams - 1);
    CHECK(counters->moves >= 1);
  }
  SECTION("an lvalue is copied once per stream") {
    const counted v(2, counters);
    w.write(v);
    CHECK(counters->copies == streams);  // fewer cannot give each stream its own; more is waste
  }
  SECTION("with one stream an rvalue is never copied") {
    readers.erase(readers.begin() + 1, readers.end());
    w.write(counted(3, counters));  // the first write after the erase forgets the dropped streams
    counters->copies = 0;
    w.write(counted(4, counters));
    CHECK(counters->copies == 0);
  }
  // Reading moves the value out: no further copies.
  const int copies_before = counters->copies;
  bytecast::error_code ec;
  for (auto& r : readers) {
    for (;;) {
      auto v = r.try_next(ec);
      if (ec) break;
      REQUIRE(v);
      CHECK(v->count == counters);
    }
    CHECK(ec == asio::error::would_block);
  }
  CHECK(counters->copies == copies_before);
}

TEST_CASE("typed_stream: a T without default constructor works") {
  STATIC_REQUIRE_FALSE(std::is_default_constructible_v<no_default>);
  asio::io_context ctx;
  bytecast::typed_writer<no_default> w(ctx);
  auto s = w.stream();
  auto t = w.stream();
  for (int i = 0; i < 5; ++i) w.write(no_default(std::to_string(i)));
  w.close();

  std::vector<std::string> got;
  for (;;) {
    auto r = next_now(ctx, s);
    REQUIRE_FALSE(r.ec);
    if (!r.value) break;
    got.push_back(r.value->text);
  }
  CHECK(got == std::vector<std::string>{"0", "1", "2", "3", "4"});
  bytecast::error_code ec;
  for (int i = 0; i < 5; ++i) {
    auto v = t.try_next(ec);
    REQUIRE_FALSE(ec);
    REQUIRE(v);
    CHECK(v->text == std::to_string(i));
  }
  CHECK_FALSE(t.try_next(ec));
  CHECK_FALSE(ec);
}

TEST_CASE("typed_stream: a T without default constructor works with coroutines") {
  asio::io_context ctx;
  bytecast::typed_writer<no_default> w(ctx);
  auto s = w.stream();
  w.write(no_default("x"));
  const no_default y("y");
  w.write(y);
  w.close();
  auto got = run_coro(ctx, [&]() -> asio::awaitable<std::vector<std::string>> {
    std::vector<std::string> out;
    for (;;) {
      std::optional<no_default> v = co_await s.async_next(asio::use_awaitable);
      if (!v) break;
      out.push_back(v->text);
    }
    try {
      co_await s.async_next(asio::use_awaitable);
      out.push_back("<no throw>");
    } catch (const bytecast::system_error& e) {
      out.push_back(e.code() == asio::error::eof ? "<eof>" : e.code().message());
    }
    co_return out;
  }());
  CHECK(got == std::vector<std::string>{"x", "y", "<eof>"});
}

// ---------------------------------------------------------------------------------------------
// Close and destruction
// ---------------------------------------------------------------------------------------------

TEST_CASE("typed_writer: write after close throws broken_pipe and delivers nothing") {
  asio::io_context ctx;
  bytecast::typed_writer<std::string> w(ctx);
  auto s = w.stream();
  w.write("before");
  CHECK(w.is_open());
  w.close();
  CHECK_FALSE(w.is_open());
  w.close();  // idempotent
  CHECK_FALSE(w.is_open());

  const std::string lvalue = "after (lvalue)";
  for (int form = 0; form < 2; ++form) {
    bool threw = false;
    try {
      if (form == 0)
        w.write(std::string("after (rvalue)"));
      else
        w.write(lvalue);
    } catch (const bytecast::system_error& e) {
      threw = true;
      CHECK(e.code() == asio::error::broken_pipe);
    }
    CHECK(threw);
  }
  CHECK(drain(ctx, s) == std::vector<std::string>{"before"});  // one nullopt, nothing after it
  CHECK(next_now(ctx, s).ec == asio::error::eof);
}

TEST_CASE("typed_writer: a writer destroyed before its streams still delivers every value, then nullopt") {
  asio::io_context ctx;
  std::optional<bytecast::typed_writer<std::string>> w(std::in_place, ctx);
  auto a = w->stream();
  auto b = w->stream();
  const auto id = w->id();
  std::vector<std::string> sent;
  for (int i = 0; i < 20; ++i) {
    sent.push_back("value " + std::to_string(i));
    w->write(sent.back());
  }
  typed_result<std::string> pending;
  auto c = w->stream();
  c.async_next(pending.handler());  // waiting when the writer goes away
  poll(ctx);
  REQUIRE(pending.calls == 0);
  w.reset();
  CHECK(pending.calls == 0);  // the destructor does not run a reader's handler inline
  CHECK(a.writer_id() == id);
  CHECK(drain(ctx, a) == sent);
  CHECK(drain(ctx, b) == sent);
  CHECK(next_now(ctx, a).ec == asio::error::eof);
  poll_until(ctx, [&] { return pending.calls > 0; });
  CHECK_FALSE(pending.ec);
  CHECK_FALSE(pending.value.has_value());
}

TEST_CASE("typed_writer: stream_count forgets destroyed streams after the next write") {
  asio::io_context ctx;
  bytecast::typed_writer<int> w(ctx);
  CHECK(w.stream_count() == 0);
  auto a = w.stream();
  {
    auto b = w.stream();
    CHECK(w.stream_count() == 2);
  }
  w.write(1);
  CHECK(w.stream_count() == 1);
  w.close();
  bytecast::error_code ec;
  CHECK(a.try_next(ec) == std::optional<int>(1));
}

TEST_CASE("typed_stream: destroying a stream with a pending read completes it with operation_aborted") {
  asio::io_context ctx;
  bytecast::typed_writer<int> w(ctx);
  typed_result<int> r;
  {
    auto s = w.stream();
    s.async_next(r.handler());
    poll(ctx);
    REQUIRE(r.calls == 0);
  }
  CHECK(r.calls == 0);
  w.write(1);
  poll_until(ctx, [&] { return r.calls > 0; });
  CHECK(r.calls == 1);
  CHECK(r.ec == asio::error::operation_aborted);
  CHECK_FALSE(r.value.has_value());
}

// ---------------------------------------------------------------------------------------------
// Completion rules
// ---------------------------------------------------------------------------------------------

TEST_CASE("typed_stream: async_next never completes inline") {
  // Initiated from outside the io_context, or from a handler running on the stream's executor
  // (where a careless dispatch would run the completion inline).
  const bool on_executor = GENERATE(false, true);
  CAPTURE(on_executor);

  asio::io_context ctx;
  bytecast::typed_writer<int> w(ctx);
  auto s = w.stream();
  typed_result<int> r;

  auto initiate = [&](auto&& fn) {
    if (!on_executor) {
      fn();
      CHECK(r.calls == 0);
      CHECK(r.ec == not_called);
      return;
    }
    bool ran = false;
    asio::post(ctx, [&] {
      fn();
      CHECK(r.calls == 0);
      CHECK(r.ec == not_called);
      ran = true;
    });
    poll_until(ctx, [&] { return ran; });
  };

  SECTION("with a value ready") {
    w.write(1);
    initiate([&] { s.async_next(r.handler()); });
    poll_until(ctx, [&] { return r.calls > 0; });
    CHECK(r.value == std::optional<int>(1));
  }
  SECTION("with nothing queued, completed by a later write") {
    initiate([&] {
      s.async_next(r.handler());
      w.write(2);
      CHECK(r.calls == 0);
    });
    poll_until(ctx, [&] { return r.calls > 0; });
    CHECK(r.value == std::optional<int>(2));
  }
  SECTION("with nothing queued, completed by a later close") {
    initiate([&] {
      s.async_next(r.handler());
      w.close();
      CHECK(r.calls == 0);
    });
    poll_until(ctx, [&] { return r.calls > 0; });
    CHECK_FALSE(r.ec);
    CHECK_FALSE(r.value.has_value());
  }
  SECTION("with the nullopt ready") {
    w.close();
    initiate([&] { s.async_next(r.handler()); });
    poll_until(ctx, [&] { return r.calls > 0; });
    CHECK_FALSE(r.ec);
    CHECK_FALSE(r.value.has_value());
  }
  SECTION("after the end of the stream") {
    w.close();
    REQUIRE_FALSE(next_now(ctx, s).value.has_value());
    initiate([&] { s.async_next(r.handler()); });
    poll_until(ctx, [&] { return r.calls > 0; });
    CHECK(r.ec == asio::error::eof);
  }
  SECTION("while another read is pending (already_started)") {
    typed_result<int> first;
    s.async_next(first.handler());
    poll(ctx);
    REQUIRE(first.calls == 0);
    initiate([&] { s.async_next(r.handler()); });
    poll_until(ctx, [&] { return r.calls > 0; });
    CHECK(r.ec == asio::error::already_started);
    CHECK_FALSE(r.value.has_value());
    CHECK(first.calls == 0);  // left untouched
    w.write(3);
    poll_until(ctx, [&] { return first.calls > 0; });
    CHECK(first.value == std::optional<int>(3));
  }
  CHECK(r.calls == 1);
}

TEST_CASE("typed_stream: completion handlers run on their associated executor") {
  asio::io_context ctx;
  asio::io_context other_ctx;
  bytecast::typed_writer<int> w(ctx);
  auto s = w.stream();
  int calls = 0;
  bool on_other = false;
  std::optional<int> got;
  s.async_next(asio::bind_executor(other_ctx, [&](bytecast::error_code, std::optional<int> v) {
    ++calls;
    on_other = other_ctx.get_executor().running_in_this_thread();
    got = v;
  }));
  w.write(11);
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (calls == 0 && std::chrono::steady_clock::now() < deadline) {
    poll(ctx);
    poll(other_ctx);
  }
  REQUIRE(calls == 1);
  CHECK(on_other);
  CHECK(got == std::optional<int>(11));
}

TEST_CASE("typed_stream: async_next works with use_future, deferred and as_tuple") {
  asio::io_context ctx;
  bytecast::typed_writer<int> w(ctx);
  auto s = w.stream();
  w.write(1);
  w.write(2);
  w.write(3);
  w.close();

  SECTION("use_future") {
    auto work = asio::make_work_guard(ctx);
    std::thread io([&] { ctx.run_for(60s); });
    std::vector<std::optional<int>> got;
    for (int i = 0; i < 4; ++i) {
      auto f = s.async_next(asio::use_future);
      if (f.wait_for(30s) != std::future_status::ready) break;
      got.push_back(f.get());
    }
    auto f = s.async_next(asio::use_future);
    const bool ready = f.wait_for(30s) == std::future_status::ready;
    // Joined before the exception is looked at: TSan does not see libstdc++'s reference count of
    // an exception shared between threads, and would report its release as a race.
    work.reset();
    io.join();
    bool eof = false;
    if (ready) {
      try {
        f.get();
      } catch (const bytecast::system_error& e) {
        eof = e.code() == asio::error::eof;
      }
    }
    CHECK(got == std::vector<std::optional<int>>{1, 2, 3, std::nullopt});
    CHECK(eof);
  }
  SECTION("deferred and as_tuple") {
    auto op = s.async_next(deferred);
    typed_result<int> r;
    CHECK(poll(ctx) == 0);  // deferred: not started yet
    std::move(op)(r.handler());
    poll_until(ctx, [&] { return r.calls > 0; });
    CHECK(r.value == std::optional<int>(1));

    auto got = run_coro(ctx, [&]() -> asio::awaitable<std::vector<std::string>> {
      std::vector<std::string> out;
      for (int i = 0; i < 4; ++i) {
        auto [ec, v] = co_await s.async_next(as_tuple(asio::use_awaitable));
        out.push_back(ec ? (ec == asio::error::eof ? "<eof>" : ec.message())
                         : (v ? std::to_string(*v) : "<nullopt>"));
      }
      co_return out;
    }());
    CHECK(got == std::vector<std::string>{"2", "3", "<nullopt>", "<eof>"});
  }
}

// ---------------------------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------------------------

TEST_CASE("typed_stream: a read cancelled through its cancellation slot completes with operation_aborted and loses no value") {
  const auto type = GENERATE(asio::cancellation_type::terminal, asio::cancellation_type::partial,
                             asio::cancellation_type::total);
  CAPTURE(static_cast<unsigned>(type));

  asio::io_context ctx;
  bytecast::typed_writer<int> w(ctx);
  auto s = w.stream();
  asio::cancellation_signal sig;

  typed_result<int> r;
  s.async_next(asio::bind_cancellation_slot(sig.slot(), r.handler()));
  poll(ctx);
  REQUIRE(r.calls == 0);
  sig.emit(type);
  CHECK(r.calls == 0);  // not inline
  poll_until(ctx, [&] { return r.calls > 0; });
  CHECK(r.calls == 1);
  CHECK(r.ec == asio::error::operation_aborted);
  CHECK_FALSE(r.value.has_value());

  w.write(1);
  w.write(2);
  CHECK(next_now(ctx, s).value == std::optional<int>(1));
  CHECK(next_now(ctx, s).value == std::optional<int>(2));

  // Cancelled again, then read again: the stream stays usable.
  typed_result<int> again;
  s.async_next(asio::bind_cancellation_slot(sig.slot(), again.handler()));
  poll(ctx);
  sig.emit(type);
  poll_until(ctx, [&] { return again.calls > 0; });
  CHECK(again.ec == asio::error::operation_aborted);
  w.write(3);
  w.close();
  CHECK(drain(ctx, s) == std::vector<int>{3});

  // A signal emitted after the read completed has no effect.
  sig.emit(type);
  CHECK(poll(ctx) == 0);
}

TEST_CASE("typed_stream: a cancellation racing a ready value loses no value") {
  const auto type = GENERATE(asio::cancellation_type::terminal, asio::cancellation_type::partial,
                             asio::cancellation_type::total);
  const bool ready_before_start = GENERATE(false, true);
  CAPTURE(static_cast<unsigned>(type), ready_before_start);
  asio::io_context ctx;
  bytecast::typed_writer<int> w(ctx);
  auto s = w.stream();
  asio::cancellation_signal sig;
  typed_result<int> r;
  if (ready_before_start) w.write(1);
  s.async_next(asio::bind_cancellation_slot(sig.slot(), r.handler()));
  if (!ready_before_start) w.write(1);
  sig.emit(type);  // before the reader's executor had a chance to run
  w.write(2);
  poll_until(ctx, [&] { return r.calls > 0; });
  CHECK(r.calls == 1);
  std::vector<int> got;
  if (r.ec == asio::error::operation_aborted) {
    CHECK_FALSE(r.value.has_value());
  } else {
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.value.has_value());
    got.push_back(*r.value);
  }
  w.close();
  for (int v : drain(ctx, s)) got.push_back(v);
  CHECK(got == std::vector<int>{1, 2});
}

TEST_CASE("typed_stream: a read raced by a timer with || loses no value") {
  asio::io_context ctx;
  bytecast::typed_writer<int> w(ctx);
  auto s = w.stream();
  // The writer writes every 3 ms while the reader gives up after 1 ms each time: many reads are
  // cancelled, some of them right when a value arrives.
  auto writer_timer = std::make_shared<asio::steady_timer>(ctx);
  int next = 0;
  std::function<void()> write_next = [&] {
    writer_timer->expires_after(3ms);
    writer_timer->async_wait([&](bytecast::error_code) {
      if (next < 100) {
        w.write(next++);
        write_next();
      } else {
        w.close();
      }
    });
  };
  write_next();
  struct outcome {
    std::vector<int> values;
    int timeouts = 0;
    bool ended = false;
  };
  auto got = run_coro(ctx, [&]() -> asio::awaitable<outcome> {
    outcome out;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (int guard = 0; guard < 100000; ++guard) {
      timer.expires_after(guard % 2 == 0 ? 1ms : 0ms);
      auto r = co_await (s.async_next(asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
      if (r.index() == 1) {
        ++out.timeouts;
        continue;
      }
      auto v = std::get<0>(r);
      if (!v) {
        out.ended = true;
        break;
      }
      out.values.push_back(*v);
    }
    co_return out;
  }());
  std::vector<int> expected(100);
  for (int i = 0; i < 100; ++i) expected[static_cast<std::size_t>(i)] = i;
  CHECK(got.ended);
  CHECK(got.values == expected);
  CHECK(got.timeouts > 0);  // the timer did win some races
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

TEST_CASE("typed_stream: several writer threads and readers on a 2-thread io_context see one order and lose nothing") {
  constexpr int writer_threads = 4;
  constexpr int per_thread = 2000;
  constexpr int readers = 4;
  const bool on_strand = GENERATE(false, true);
  CAPTURE(on_strand);

  asio::io_context ctx;
  bytecast::typed_writer<tagged> w(ctx);

  struct reader_state {
    std::vector<tagged> got;
    bool ended = false;
    std::string error;
  };
  std::vector<reader_state> state(readers);
  for (int r = 0; r < readers; ++r) {
    auto reader = [](bytecast::typed_stream<tagged> s, reader_state& st, bool drain_first) -> asio::awaitable<void> {
      try {
        for (;;) {
          std::optional<tagged> v;
          bytecast::error_code ec;
          if (drain_first) v = s.try_next(ec);
          if (!drain_first || ec == asio::error::would_block)
            v = co_await s.async_next(asio::use_awaitable);
          else if (ec) {
            st.error = ec.message();
            co_return;
          }
          if (!v) {
            st.ended = true;
            co_return;
          }
          st.got.push_back(*v);
        }
      } catch (const std::exception& e) {
        st.error = e.what();
      }
    };
    auto s = w.stream();
    const bool drain_first = r % 2 == 0;  // half the readers use the try_next drain loop
    if (on_strand)
      asio::co_spawn(asio::make_strand(ctx), reader(std::move(s), state[static_cast<std::size_t>(r)], drain_first),
                     asio::detached);
    else
      asio::co_spawn(ctx, reader(std::move(s), state[static_cast<std::size_t>(r)], drain_first), asio::detached);
  }

  std::vector<std::thread> io;
  for (int i = 0; i < 2; ++i) io.emplace_back([&] { ctx.run_for(120s); });
  std::vector<std::thread> writers;
  for (int t = 0; t < writer_threads; ++t)
    writers.emplace_back([&w, t] {
      for (int i = 0; i < per_thread; ++i) w.write(tagged{t, i});
    });
  for (auto& t : writers) t.join();
  w.close();
  for (auto& t : io) t.join();
  REQUIRE(ctx.stopped());  // every reader finished before the deadline

  for (int r = 0; r < readers; ++r) {
    CAPTURE(r);
    const auto& st = state[static_cast<std::size_t>(r)];
    CHECK(st.error.empty());
    CHECK(st.ended);
    REQUIRE(st.got.size() == static_cast<std::size_t>(writer_threads * per_thread));
    // every value exactly once, each thread's values in its order
    std::vector<int> next_seq(writer_threads, 0);
    bool in_order = true;
    for (const auto& v : st.got) {
      if (v.thread < 0 || v.thread >= writer_threads || v.seq != next_seq[static_cast<std::size_t>(v.thread)]++)
        in_order = false;
    }
    CHECK(in_order);
    // one global order: every reader saw exactly the same sequence
    CHECK(st.got == state[0].got);
  }
}
