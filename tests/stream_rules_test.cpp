// The rules that byte streams (byte_writer.hpp, byte_stream.hpp) and typed streams (typed.hpp)
// share, each tested once over both kinds (kinds.hpp): the protocol (items in order, one end,
// then eof), try_next, moves, close and destruction, stream_count, inline-completion rules,
// executors and cancellation. What only one kind has stays in byte_stream_test.cpp,
// byte_writer_test.cpp and typed_test.cpp.
#include "test_util.hpp"

#include <functional>
#include <memory>
#include <variant>

using namespace bytecast_test;
using namespace asio::experimental::awaitable_operators;

// Every test here runs once per kind; a kind's values are strings, written as bytes or as values.
#define BYTECAST_EVERY_KIND byte_kind, typed_kind<std::string>

// ---------------------------------------------------------------------------------------------
// Moves
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("byte and typed streams: writer and stream are move-only, and a move keeps the streams and the "
                   "read position",
                   "", BYTECAST_EVERY_KIND) {
  using writer_type = typename TestType::writer_type;
  using stream_type = typename TestType::stream_type;
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<writer_type>);
  STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<writer_type>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<writer_type>);
  STATIC_REQUIRE(std::is_move_assignable_v<writer_type>);
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<stream_type>);
  STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<stream_type>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<stream_type>);
  STATIC_REQUIRE(std::is_move_assignable_v<stream_type>);

  asio::io_context ctx;
  writer_type w(ctx);
  SECTION("a moved writer takes its streams along, a moved stream its read position") {
    auto s = w.stream();
    w.write("1");
    writer_type moved(std::move(w));  // the streams follow the writer
    moved.write("2");
    stream_type s2(std::move(s));  // the read position follows the stream
    moved.close();
    CHECK(drain(ctx, s2) == std::vector<std::string>{"1", "2"});
  }
  SECTION("move construction and move assignment of a stream keep the read position") {
    auto s = w.stream();
    w.write("1");
    w.write("2");
    w.write("3");
    CHECK(next_now(ctx, s).value == "1");
    stream_type moved(std::move(s));
    CHECK(moved.writer_id() == w.id());
    CHECK(next_now(ctx, moved).value == "2");

    auto target = w.stream();  // its own reader, replaced by the assignment below
    target = std::move(moved);
    CHECK(next_now(ctx, target).value == "3");
    w.write("4");
    CHECK(w.stream_count() == 1);
    w.close();
    CHECK(drain(ctx, target) == std::vector<std::string>{"4"});
  }
}

// ---------------------------------------------------------------------------------------------
// The protocol: items in order, then exactly one end, then eof
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("byte and typed streams: a stream receives every item in the writer's order, each exactly as "
                   "written, then exactly one end, then eof",
                   "", BYTECAST_EVERY_KIND) {
  asio::io_context ctx;
  typename TestType::writer_type w(ctx);
  auto s = w.stream();
  std::vector<std::string> sent;
  for (int i = 0; i < 100; ++i) {
    sent.push_back(std::to_string(i) + std::string(static_cast<std::size_t>(i % 7) * 13, char('a' + i % 26)));
    w.write(sent.back());
  }
  w.close();

  for (const auto& expected : sent) {
    auto r = next_now(ctx, s);
    CHECK_FALSE(r.ec);
    REQUIRE(r.value);
    CHECK(*r.value == expected);
  }
  auto end = next_now(ctx, s);
  CHECK_FALSE(end.ec);
  CHECK_FALSE(end.value);
  for (int i = 0; i < 3; ++i) {
    auto after = next_now(ctx, s);
    CHECK(after.ec == asio::error::eof);
    CHECK_FALSE(after.value);
  }
}

TEMPLATE_TEST_CASE("byte and typed streams: a late stream sees only items written after it was created", "",
                   BYTECAST_EVERY_KIND) {
  asio::io_context ctx;
  typename TestType::writer_type w(ctx);
  auto early = w.stream();
  w.write("one");
  w.write("two");
  auto late = w.stream();
  w.write("three");
  CHECK(w.stream_count() == 2);
  auto later = w.stream();
  w.close();
  auto after_close = w.stream();  // yields the end at once
  CHECK(drain(ctx, early) == std::vector<std::string>{"one", "two", "three"});
  CHECK(drain(ctx, late) == std::vector<std::string>{"three"});
  CHECK(drain(ctx, later).empty());
  CHECK(drain(ctx, after_close).empty());
  CHECK(next_now(ctx, after_close).ec == asio::error::eof);
}

TEMPLATE_TEST_CASE("byte and typed streams: a stream made from a closed writer yields the end at once", "",
                   BYTECAST_EVERY_KIND) {
  asio::io_context ctx;
  typename TestType::writer_type w(ctx);
  w.write("before close");
  w.close();
  auto s = w.stream();
  auto first = next_now(ctx, s);
  CHECK_FALSE(first.ec);
  CHECK_FALSE(first.value);
  auto second = next_now(ctx, s);
  CHECK(second.ec == asio::error::eof);
  CHECK_FALSE(second.value);

  auto t = w.stream();
  bytecast::error_code ec = not_called;
  auto v = TestType::item(t.try_next(ec));
  CHECK_FALSE(ec);
  CHECK_FALSE(v);
  v = TestType::item(t.try_next(ec));
  CHECK(ec == asio::error::eof);
  CHECK_FALSE(v);
}

TEMPLATE_TEST_CASE("byte and typed writers: a waiting read completes once the writer writes or closes, never inside "
                   "write or close",
                   "", BYTECAST_EVERY_KIND) {
  asio::io_context ctx;
  typename TestType::writer_type w(ctx);
  auto s1 = w.stream();
  auto s2 = w.stream();
  any_read<TestType> r1, r2;
  r1.start(s1);
  r2.start(s2);
  CHECK(poll(ctx) == 0);  // nothing queued: the reads wait
  CHECK(r1.calls == 0);

  w.write("payload");
  CHECK(r1.calls == 0);  // write returned, the handler has not run yet
  CHECK(r2.calls == 0);
  CHECK(r1.ec == not_called);
  poll(ctx);
  CHECK(r1.calls == 1);
  CHECK_FALSE(r1.ec);
  CHECK(r1.value == "payload");
  CHECK(r2.calls == 1);

  any_read<TestType> e1;
  e1.start(s1);
  poll(ctx);
  CHECK(e1.calls == 0);
  w.close();
  CHECK(e1.calls == 0);  // close returned, the handler has not run yet
  run_all(ctx);
  CHECK(e1.calls == 1);
  CHECK_FALSE(e1.ec);
  CHECK_FALSE(e1.value);  // the pending read gets the end
}

// ---------------------------------------------------------------------------------------------
// try_next
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("byte and typed streams: try_next returns queued items, the end once, then eof", "",
                   BYTECAST_EVERY_KIND) {
  asio::io_context ctx;
  typename TestType::writer_type w(ctx);
  auto s = w.stream();
  w.write("a");
  w.write("b");
  w.close();

  bytecast::error_code ec = not_called;
  auto v = TestType::item(s.try_next(ec));
  CHECK_FALSE(ec);
  REQUIRE(v);
  CHECK(*v == "a");
  ec = not_called;
  v = TestType::item(s.try_next(ec));
  CHECK_FALSE(ec);
  REQUIRE(v);
  CHECK(*v == "b");
  ec = not_called;
  v = TestType::item(s.try_next(ec));
  CHECK_FALSE(ec);
  CHECK_FALSE(v);  // the end, once
  for (int i = 0; i < 3; ++i) {
    ec = not_called;
    v = TestType::item(s.try_next(ec));
    CHECK(ec == asio::error::eof);
    CHECK_FALSE(v);
  }
  CHECK(poll(ctx) == 0);  // nothing was posted
  CHECK(next_now(ctx, s).ec == asio::error::eof);
}

TEMPLATE_TEST_CASE("byte and typed streams: try_next reports would_block while nothing is queued", "",
                   BYTECAST_EVERY_KIND) {
  asio::io_context ctx;
  typename TestType::writer_type w(ctx);
  auto s = w.stream();
  bytecast::error_code ec = not_called;
  auto v = TestType::item(s.try_next(ec));
  CHECK(ec == asio::error::would_block);
  CHECK_FALSE(v);
  v = TestType::item(s.try_next(ec));
  CHECK(ec == asio::error::would_block);  // still nothing, still usable

  w.write("now");
  v = TestType::item(s.try_next(ec));
  CHECK_FALSE(ec);
  REQUIRE(v);
  CHECK(*v == "now");
  v = TestType::item(s.try_next(ec));
  CHECK(ec == asio::error::would_block);
  CHECK(TestType::queued(s) == 0);
  w.close();
  v = TestType::item(s.try_next(ec));
  CHECK_FALSE(ec);
  CHECK_FALSE(v);
}

TEMPLATE_TEST_CASE("byte and typed streams: try_next while an async_next is pending reports already_started", "",
                   BYTECAST_EVERY_KIND) {
  asio::io_context ctx;
  typename TestType::writer_type w(ctx);
  auto s = w.stream();
  any_read<TestType> pending;
  pending.start(s);
  poll(ctx);
  REQUIRE(pending.calls == 0);

  bytecast::error_code ec = not_called;
  auto v = TestType::item(s.try_next(ec));
  CHECK(ec == asio::error::already_started);
  CHECK_FALSE(v);

  w.write("for the pending one");
  w.write("next");
  run_all(ctx);
  CHECK(pending.calls == 1);
  CHECK_FALSE(pending.ec);
  CHECK(pending.value == "for the pending one");  // the pending read was left untouched
  v = TestType::item(s.try_next(ec));
  CHECK_FALSE(ec);
  REQUIRE(v);
  CHECK(*v == "next");
  v = TestType::item(s.try_next(ec));
  CHECK(ec == asio::error::would_block);
}

TEMPLATE_TEST_CASE("byte and typed streams: try_next and async_next share one read position", "",
                   BYTECAST_EVERY_KIND) {
  asio::io_context ctx;
  typename TestType::writer_type w(ctx);
  auto s = w.stream();
  for (int i = 0; i < 6; ++i) w.write(std::to_string(i));
  w.close();
  std::vector<std::string> got;
  bytecast::error_code ec;
  for (int i = 0; i < 3; ++i) {
    auto v = TestType::item(s.try_next(ec));
    REQUIRE_FALSE(ec);
    REQUIRE(v);
    got.push_back(*v);
    auto r = next_now(ctx, s);
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.value);
    got.push_back(*r.value);
  }
  CHECK(got == std::vector<std::string>{"0", "1", "2", "3", "4", "5"});
  auto end = TestType::item(s.try_next(ec));
  CHECK_FALSE(ec);
  CHECK_FALSE(end);
  CHECK(next_now(ctx, s).ec == asio::error::eof);
}

TEMPLATE_TEST_CASE("byte and typed streams: the documented drain loop reads everything", "", BYTECAST_EVERY_KIND) {
  asio::io_context ctx;
  typename TestType::writer_type w(ctx);
  auto s = w.stream();
  std::vector<std::string> got;
  bool ended = false;
  // API.md's fast reader loop, word for word: the same code for both kinds.
  auto read_all = [&]() -> asio::awaitable<void> {
    for (;;) {
      bytecast::error_code ec;
      auto v = s.try_next(ec);
      if (ec == asio::error::would_block)
        v = co_await s.async_next(asio::use_awaitable);
      else if (ec)
        break;
      const auto item = TestType::item(v);
      if (!item) {
        ended = true;
        break;
      }
      got.push_back(*item);
    }
  };

  SECTION("written in rounds while the reader runs") {
    asio::co_spawn(ctx, read_all(), rethrow{});
    std::vector<std::string> sent;
    for (int round = 0; round < 10; ++round) {
      for (int i = 0; i < round; ++i) {
        sent.push_back(std::to_string(round) + "." + std::to_string(i));
        w.write(sent.back());
      }
      poll(ctx);
    }
    w.close();
    run_all(ctx);
    CHECK(ended);
    CHECK(got == sent);
  }
  SECTION("some written before the reader starts, the rest after a pause") {
    for (int i = 0; i < 10; ++i) w.write(std::to_string(i));
    auto later = std::make_shared<asio::steady_timer>(ctx, 20ms);
    later->async_wait([&](bytecast::error_code) {
      for (int i = 10; i < 20; ++i) w.write(std::to_string(i));
      w.close();
    });
    run_coro(ctx, read_all());
    std::vector<std::string> expected;
    for (int i = 0; i < 20; ++i) expected.push_back(std::to_string(i));
    CHECK(ended);
    CHECK(got == expected);
  }
}

// ---------------------------------------------------------------------------------------------
// Close and destruction
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("byte and typed writers: close is idempotent, is_open turns false, and a stream gets exactly one "
                   "end",
                   "", BYTECAST_EVERY_KIND) {
  asio::io_context ctx;
  typename TestType::writer_type w(ctx);
  auto s = w.stream();
  CHECK(w.is_open());
  w.write("a");
  w.close();
  CHECK_FALSE(w.is_open());
  w.close();
  w.close();
  CHECK_FALSE(w.is_open());

  CHECK(next_now(ctx, s).value == "a");
  auto end = next_now(ctx, s);
  CHECK_FALSE(end.ec);
  CHECK_FALSE(end.value);
  for (int i = 0; i < 3; ++i) {
    auto eof = next_now(ctx, s);
    CHECK(eof.ec == asio::error::eof);  // exactly one end despite three close() calls
    CHECK_FALSE(eof.value);
  }
}

TEMPLATE_TEST_CASE("byte and typed writers: a write after close throws broken_pipe and delivers nothing", "",
                   BYTECAST_EVERY_KIND) {
  asio::io_context ctx;
  typename TestType::writer_type w(ctx);
  auto s = w.stream();
  w.write("before");
  w.close();

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

  CHECK(next_now(ctx, s).value == "before");
  auto end = next_now(ctx, s);  // one end, nothing after it
  CHECK_FALSE(end.ec);
  CHECK_FALSE(end.value);
  CHECK(next_now(ctx, s).ec == asio::error::eof);
}

TEMPLATE_TEST_CASE("byte and typed writers: a writer destroyed before its streams still delivers every item, then "
                   "the end",
                   "", BYTECAST_EVERY_KIND) {
  asio::io_context ctx;
  std::optional<typename TestType::writer_type> w(std::in_place, ctx);
  auto a = w->stream();
  auto b = w->stream();
  const auto id = w->id();
  std::vector<std::string> sent;
  for (int i = 0; i < 20; ++i) {
    sent.push_back("item " + std::to_string(i));
    w->write(sent.back());
  }
  any_read<TestType> pending;
  auto c = w->stream();
  pending.start(c);  // waiting when the writer goes away
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
  CHECK_FALSE(pending.value);
}

TEMPLATE_TEST_CASE("byte and typed writers: stream_count counts live streams and forgets destroyed ones after the "
                   "next write",
                   "", BYTECAST_EVERY_KIND) {
  using stream_type = typename TestType::stream_type;
  asio::io_context ctx;
  typename TestType::writer_type w(ctx);
  CHECK(w.stream_count() == 0);
  std::optional<stream_type> a(w.stream());
  std::optional<stream_type> b(w.stream());
  auto c = w.stream();
  CHECK(w.stream_count() == 3);

  a.reset();
  w.write("x");
  CHECK(w.stream_count() == 2);

  // Moving a stream does not create or drop a reader.
  stream_type moved = std::move(c);
  w.write("y");
  CHECK(w.stream_count() == 2);

  // A stream destroyed with items still queued is also forgotten.
  b.reset();
  w.write("z");
  CHECK(w.stream_count() == 1);

  {
    auto tmp = w.stream();
    CHECK(w.stream_count() == 2);
  }
  w.close();
  CHECK(w.stream_count() <= 1);  // tmp is no longer counted once close() returned
  bytecast::error_code ec;
  CHECK(TestType::item(moved.try_next(ec)) == "x");  // the live stream got every write
  run_all(ctx);
}

TEMPLATE_TEST_CASE("byte and typed streams: destroying a stream with a pending read completes it with "
                   "operation_aborted",
                   "", BYTECAST_EVERY_KIND) {
  const auto op = GENERATE(from_range(TestType::read_ops));
  CAPTURE(name(op));
  asio::io_context ctx;
  typename TestType::writer_type w(ctx);
  any_read<TestType> r(op);
  {
    auto s = w.stream();
    r.start(s);
    poll(ctx);
    REQUIRE(r.calls == 0);
  }
  CHECK(r.calls == 0);  // the destructor does not run the handler inline
  w.write("after the stream is gone");
  CHECK(w.stream_count() == 0);
  poll_until(ctx, [&] { return r.calls > 0; });
  CHECK(r.calls == 1);
  CHECK(r.ec == asio::error::operation_aborted);
  CHECK_FALSE(r.value);
  run_all(ctx);
  CHECK(r.calls == 1);
}

// ---------------------------------------------------------------------------------------------
// Completion rules
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("byte and typed streams: no read completes inline", "", BYTECAST_EVERY_KIND) {
  const auto op = GENERATE(from_range(TestType::read_ops));
  // Initiated from outside the io_context, or from a handler running on the stream's executor
  // (where a careless dispatch would run the completion inline).
  const bool on_executor = GENERATE(false, true);
  CAPTURE(name(op), on_executor);

  asio::io_context ctx;
  typename TestType::writer_type w(ctx);
  auto s = w.stream();
  any_read<TestType> r(op);

  // Runs `initiate` and asserts that nothing completed inside it.
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
  // The item a read returned is `written`, or for async_read_some a prefix of it.
  auto check_read_of = [&](const std::string& written) {
    REQUIRE(r.value);
    if (op == read_op::read_some)
      CHECK(written.rfind(*r.value, 0) == 0);
    else
      CHECK(*r.value == written);
  };
  // The end of the stream: the end item, or for async_read_some eof.
  auto check_end = [&] {
    CHECK_FALSE(r.value);
    if (op == read_op::read_some)
      CHECK(r.ec == asio::error::eof);
    else
      CHECK_FALSE(r.ec);
  };

  SECTION("with an item ready") {
    w.write("ready");
    initiate([&] { r.start(s); });
    poll_until(ctx, [&] { return r.calls > 0; });
    CHECK(r.calls == 1);
    CHECK_FALSE(r.ec);
    check_read_of("ready");
  }
  SECTION("with nothing queued, completed by a later write") {
    initiate([&] {
      r.start(s);
      CHECK(r.calls == 0);
      w.write("later");
      CHECK(r.calls == 0);
    });
    poll_until(ctx, [&] { return r.calls > 0; });
    CHECK(r.calls == 1);
    CHECK_FALSE(r.ec);
    check_read_of("later");
  }
  SECTION("with nothing queued, completed by a later close") {
    initiate([&] {
      r.start(s);
      CHECK(r.calls == 0);
      w.close();
      CHECK(r.calls == 0);
    });
    poll_until(ctx, [&] { return r.calls > 0; });
    CHECK(r.calls == 1);
    check_end();
  }
  SECTION("with the end ready") {
    w.close();
    initiate([&] { r.start(s); });
    poll_until(ctx, [&] { return r.calls > 0; });
    check_end();
  }
  SECTION("after the end of the stream") {
    w.close();
    if (op == read_op::read_some) {
      any_read<TestType> first(op);
      first.start(s);
      poll_until(ctx, [&] { return first.calls > 0; });
      REQUIRE(first.ec == asio::error::eof);
    } else {
      auto end = next_now(ctx, s);
      REQUIRE_FALSE(end.ec);
      REQUIRE_FALSE(end.value);
    }
    initiate([&] { r.start(s); });
    poll_until(ctx, [&] { return r.calls > 0; });
    CHECK(r.ec == asio::error::eof);
    CHECK_FALSE(r.value);
  }
  SECTION("while another read is pending (already_started)") {
    any_read<TestType> first;
    first.start(s);
    poll(ctx);
    REQUIRE(first.calls == 0);
    initiate([&] { r.start(s); });
    poll_until(ctx, [&] { return r.calls > 0; });
    CHECK(r.ec == asio::error::already_started);
    CHECK_FALSE(r.value);
    CHECK(first.calls == 0);  // left untouched
    w.write("first");
    poll_until(ctx, [&] { return first.calls > 0; });
    CHECK(first.value == "first");
  }
  CHECK(r.calls == 1);
}

TEMPLATE_TEST_CASE("byte and typed streams: a completion handler bound to another io_context runs there", "",
                   BYTECAST_EVERY_KIND) {
  asio::io_context ctx;        // the writer's and stream's executor
  asio::io_context other_ctx;  // the handler's associated executor
  typename TestType::writer_type w(ctx);
  auto s = w.stream();
  int calls = 0;
  bool on_other = false;
  std::optional<std::string> got;
  s.async_next(asio::bind_executor(other_ctx, [&](bytecast::error_code ec, typename TestType::next_type v) {
    ++calls;
    on_other = other_ctx.get_executor().running_in_this_thread();
    got = ec ? std::optional<std::string>(ec.message()) : TestType::item(v);
  }));
  w.write("elsewhere");
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (calls == 0 && std::chrono::steady_clock::now() < deadline) {
    poll(ctx);
    poll(other_ctx);
  }
  REQUIRE(calls == 1);
  CHECK(on_other);
  CHECK(got == "elsewhere");
}

// ---------------------------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("byte and typed streams: a read cancelled through its cancellation slot completes with "
                   "operation_aborted and loses no item",
                   "", BYTECAST_EVERY_KIND) {
  const auto type = GENERATE(asio::cancellation_type::terminal, asio::cancellation_type::partial,
                             asio::cancellation_type::total);
  const auto op = GENERATE(from_range(TestType::read_ops));
  CAPTURE(static_cast<unsigned>(type), name(op));

  asio::io_context ctx;
  typename TestType::writer_type w(ctx);
  auto s = w.stream();
  asio::cancellation_signal sig;

  any_read<TestType> r(op);
  r.start(s, sig.slot());
  poll(ctx);
  REQUIRE(r.calls == 0);
  sig.emit(type);
  CHECK(r.calls == 0);  // not inline
  poll_until(ctx, [&] { return r.calls > 0; });
  CHECK(r.calls == 1);
  CHECK(r.ec == asio::error::operation_aborted);
  CHECK_FALSE(r.value);

  w.write("kept");
  w.write("also kept");
  CHECK(next_now(ctx, s).value == "kept");
  CHECK(next_now(ctx, s).value == "also kept");

  // A cancelled read does not end the stream: it can be cancelled again and read again.
  any_read<TestType> again;
  again.start(s, sig.slot());
  poll(ctx);
  sig.emit(type);
  poll_until(ctx, [&] { return again.calls > 0; });
  CHECK(again.ec == asio::error::operation_aborted);
  w.write("after");
  w.close();
  CHECK(drain(ctx, s) == std::vector<std::string>{"after"});

  // A signal emitted after the read completed has no effect.
  sig.emit(type);
  CHECK(poll(ctx) == 0);
}

TEMPLATE_TEST_CASE("byte and typed streams: a read cancelled before its handler ran completes with "
                   "operation_aborted and loses no item",
                   "", BYTECAST_EVERY_KIND) {
  // Rule 4 with the reader serialised with the cancellation (single-threaded io_context): the
  // cancellation comes while the read is outstanding, before the reader's executor ran anything,
  // so the read is a cancelled call, even when its item was already queued. This is what `||`
  // relies on: when the timer wins, the read's result is thrown away, so it must not hold an item.
  const auto type = GENERATE(asio::cancellation_type::terminal, asio::cancellation_type::partial,
                             asio::cancellation_type::total);
  const bool ready_before_start = GENERATE(false, true);
  const auto op = GENERATE(from_range(TestType::read_ops));
  CAPTURE(static_cast<unsigned>(type), ready_before_start, name(op));
  asio::io_context ctx;
  typename TestType::writer_type w(ctx);
  auto s = w.stream();
  asio::cancellation_signal sig;
  any_read<TestType> r(op);
  if (ready_before_start) w.write("contested");
  r.start(s, sig.slot());
  if (!ready_before_start) w.write("contested");
  CHECK(r.calls == 0);
  sig.emit(type);  // before the reader's executor had a chance to run
  w.write("after");
  poll_until(ctx, [&] { return r.calls > 0; });
  CHECK(r.calls == 1);
  CHECK(r.ec == asio::error::operation_aborted);
  CAPTURE(r.value);
  // Whatever the outcome, no item may be lost.
  std::vector<std::string> seen;
  if (r.ec == asio::error::operation_aborted) {
    CHECK_FALSE(r.value);
  } else {
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.value);
    seen.push_back(*r.value);
  }
  w.close();
  for (const auto& v : drain(ctx, s)) seen.push_back(v);
  CHECK(seen == std::vector<std::string>{"contested", "after"});
}

TEMPLATE_TEST_CASE("byte and typed streams: a read raced by a timer with || loses no item", "",
                   BYTECAST_EVERY_KIND) {
  asio::io_context ctx;
  typename TestType::writer_type w(ctx);
  auto s = w.stream();
  // The writer writes every 3 ms while the reader gives up after 1 ms each time: many reads are
  // cancelled, some of them right when an item arrives.
  auto writer_timer = std::make_shared<asio::steady_timer>(ctx);
  int next = 0;
  std::function<void()> write_next = [&] {
    writer_timer->expires_after(3ms);
    writer_timer->async_wait([&](bytecast::error_code) {
      if (next < 100) {
        w.write(std::to_string(next++));
        write_next();
      } else {
        w.close();
      }
    });
  };
  write_next();
  struct outcome {
    std::vector<std::string> values;
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
      auto v = TestType::item(std::get<0>(r));
      if (!v) {
        out.ended = true;
        break;
      }
      out.values.push_back(*v);
    }
    co_return out;
  }());
  std::vector<std::string> expected;
  for (int i = 0; i < 100; ++i) expected.push_back(std::to_string(i));
  CHECK(got.ended);
  CHECK(got.values == expected);
  CHECK(got.timeouts > 0);  // the timer did win some races
}
