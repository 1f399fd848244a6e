// Tests for bytecast::basic_byte_stream (byte_stream.hpp): what only byte streams have (spans,
// chunks, backlog in bytes, the Asio AsyncReadStream surface, async_next_chunk and async_read_some
// with every completion token). The rules byte and typed streams share are in stream_rules_test.cpp.
#include "test_util.hpp"

#include <array>
#include <atomic>
#include <optional>
#include <type_traits>
#include <variant>

using namespace bytecast_test;
using namespace asio::experimental::awaitable_operators;

// ---------------------------------------------------------------------------------------------
// Types and basic protocol
// ---------------------------------------------------------------------------------------------

TEST_CASE("byte_stream: reports its writer's executor and id") {
  CHECK(std::is_same_v<bytecast::byte_stream::executor_type, asio::any_io_executor>);
  CHECK(noexcept(std::declval<const bytecast::byte_stream&>().get_executor()));
  CHECK(noexcept(std::declval<const bytecast::byte_stream&>().writer_id()));
  CHECK(std::is_same_v<decltype(std::declval<const bytecast::byte_stream&>().writer_id()), std::uint64_t>);

  asio::io_context ctx;
  bytecast::byte_writer w1(ctx);
  bytecast::byte_writer w2(ctx);
  auto s1 = w1.stream();
  auto s2 = w2.stream();
  CHECK(s1.writer_id() == w1.id());
  CHECK(s2.writer_id() == w2.id());
  CHECK(s1.writer_id() != s2.writer_id());
  CHECK(s1.get_executor() == w1.get_executor());
}

TEST_CASE("byte_stream: the close sentinel comes exactly once, then eof forever") {
  auto op = GENERATE(read_op::next, read_op::next_chunk);
  CAPTURE(name(op));
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  w.write("data");
  w.close();

  any_read<byte_kind> data(op);
  data.start(s);
  run_all(ctx);
  CHECK_FALSE(data.ec);
  CHECK(data.value == "data");
  CHECK_FALSE(data.empty());

  any_read<byte_kind> sentinel(op);
  sentinel.start(s);
  run_all(ctx);
  CHECK(sentinel.calls == 1);
  CHECK_FALSE(sentinel.ec);
  CHECK(sentinel.empty());

  for (int i = 0; i < 5; ++i) {
    any_read<byte_kind> eof(op);
    eof.start(s);
    run_all(ctx);
    CHECK(eof.calls == 1);
    CHECK(eof.ec == asio::error::eof);
    CHECK(eof.empty());
  }
}

TEST_CASE("byte_stream: a dropped stream's queued memory is released by the writer's next write") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto keeper = w.stream();  // a reader that keeps up: it must not keep the dropped reader's chunks alive
  const auto payload = make_bytes(8 * MiB, 2);
  constexpr int chunks = 8;

  std::optional<bytecast::byte_stream> dropped(w.stream());
  const auto base = allocated_bytes();
  for (int i = 0; i < chunks; ++i) {
    w.write(payload);
    // keeper consumes each chunk right away and lets go of it with its next operation
    bytecast::error_code ec;
    auto b = keeper.try_next(ec);
    REQUIRE_FALSE(ec);
    REQUIRE(b.size() == payload.size());
  }
  bytecast::error_code ec;
  (void)keeper.try_next(ec);  // next operation on keeper: its last span is released
  CHECK(ec == asio::error::would_block);
  CHECK(dropped->queued_chunks() == chunks);
  CHECK(dropped->queued_bytes() == chunks * payload.size());
  const auto with_backlog = allocated_bytes();
  CHECK(with_backlog >= base + (chunks - 1) * payload.size());

  dropped.reset();
  w.write("tick");  // the writer's next write prunes the dead stream at the latest
  CHECK(w.stream_count() == 1);
  const auto after = allocated_bytes();
  CAPTURE(base, with_backlog, after);
  // The dropped reader held 8 chunks; allow one more for the keeper's last span.
  CHECK(after < base + 2 * payload.size());
  run_all(ctx);
}

TEST_CASE("byte_stream: the span stays valid until the next operation on the stream") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  auto other = w.stream();
  const auto first = make_bytes(10000, 1);
  w.write(first);

  std::span<const std::byte> held;
  bytecast::error_code ec = not_called;
  s.async_next([&](bytecast::error_code e, std::span<const std::byte> b) {
    ec = e;
    held = b;
  });
  run_all(ctx);
  REQUIRE_FALSE(ec);
  REQUIRE(held.size() == first.size());

  // Other activity on the writer and on other streams does not invalidate it.
  for (int i = 0; i < 50; ++i) w.write(make_bytes(10000, static_cast<unsigned>(i + 10)));
  for (int i = 0; i < 51; ++i) (void)next_now(ctx, other);
  CHECK(std::memcmp(held.data(), first.data(), first.size()) == 0);

  // Same for try_next.
  auto b = s.try_next(ec);
  REQUIRE_FALSE(ec);
  const auto expected = make_bytes(10000, 10);
  REQUIRE(b.size() == expected.size());
  w.write("more");
  w.close();
  CHECK(std::memcmp(b.data(), expected.data(), expected.size()) == 0);
}

TEST_CASE("byte_stream: async_next_chunk returns an owning chunk that outlives the stream and the writer") {
  asio::io_context ctx;
  std::vector<bytecast::chunk> kept;
  std::vector<std::string> sent;
  {
    bytecast::byte_writer w(ctx);
    auto s = w.stream();
    for (int i = 0; i < 5; ++i) {
      sent.push_back(std::string(1000 + static_cast<std::size_t>(i), char('A' + i)));
      w.write(sent.back());
    }
    for (int i = 0; i < 5; ++i) {
      bytecast::error_code ec = not_called;
      s.async_next_chunk([&](bytecast::error_code e, bytecast::chunk c) {
        ec = e;
        kept.push_back(std::move(c));
      });
      run_all(ctx);
      REQUIRE_FALSE(ec);
    }
  }
  run_all(ctx);
  REQUIRE(kept.size() == 5);
  for (std::size_t i = 0; i < kept.size(); ++i) CHECK(to_string(kept[i].bytes()) == sent[i]);
}

TEST_CASE("byte_stream: queued_chunks and queued_bytes are a snapshot of the backlog") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  auto other = w.stream();
  CHECK(s.queued_chunks() == 0);
  CHECK(s.queued_bytes() == 0);
  w.write("a");
  w.write("bb");
  w.write("ccc");
  CHECK(s.queued_chunks() == 3);
  CHECK(s.queued_bytes() == 6);
  CHECK(next_now(ctx, s).data == "a");
  CHECK(s.queued_chunks() == 2);
  CHECK(s.queued_bytes() == 5);
  bytecast::error_code ec;
  CHECK(to_string(s.try_next(ec)) == "bb");
  CHECK(s.queued_chunks() == 1);
  CHECK(s.queued_bytes() == 3);
  CHECK(to_string(s.try_next(ec)) == "ccc");
  CHECK(s.queued_chunks() == 0);
  CHECK(s.queued_bytes() == 0);
  CHECK(other.queued_chunks() == 3);  // each reader has its own backlog
  CHECK(other.queued_bytes() == 6);
}

TEST_CASE("byte_stream: one slow stream never delays the others") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto slow = w.stream();
  auto fast = w.stream();
  for (int i = 0; i < 1000; ++i) {
    w.write(std::to_string(i));
    auto r = next_now(ctx, fast);
    REQUIRE(r.data == std::to_string(i));
  }
  CHECK(slow.queued_chunks() == 1000);
  CHECK(next_now(ctx, slow).data == "0");
}

// ---------------------------------------------------------------------------------------------
// try_next
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// async_read_some / AsyncReadStream
// ---------------------------------------------------------------------------------------------

TEST_CASE("byte_stream: async_read_some copies at most the buffer size and consumes a chunk over several reads") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  w.write("abcdefghij");
  w.write("KLM");
  w.close();
  std::string all;
  std::array<char, 4> buf{};
  for (int i = 0; i < 100; ++i) {
    size_result r;
    s.async_read_some(asio::buffer(buf), r.handler());
    run_all(ctx);
    REQUIRE(r.calls == 1);
    if (r.ec == asio::error::eof) {
      CHECK(r.n == 0);
      break;
    }
    REQUIRE_FALSE(r.ec);
    CHECK(r.n >= 1);
    CHECK(r.n <= buf.size());
    all.append(buf.data(), std::min(r.n, buf.size()));
  }
  CHECK(all == "abcdefghijKLM");
  size_result again;
  s.async_read_some(asio::buffer(buf), again.handler());
  run_all(ctx);
  CHECK(again.ec == asio::error::eof);
  CHECK(again.n == 0);
}

TEST_CASE("byte_stream: async_next after a partial async_read_some returns the unread rest of the chunk") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  w.write("hello world");
  w.write("next");
  std::array<char, 5> buf{};
  size_result r;
  s.async_read_some(asio::buffer(buf), r.handler());
  run_all(ctx);
  REQUIRE_FALSE(r.ec);
  REQUIRE(r.n >= 1);
  REQUIRE(r.n <= 5);
  CHECK(std::string(buf.data(), r.n) == std::string("hello").substr(0, r.n));
  CHECK(next_now(ctx, s).data == std::string("hello world").substr(r.n));

  // and async_next_chunk after a partial read, too
  size_result r2;
  std::array<char, 2> two{};
  s.async_read_some(asio::buffer(two), r2.handler());
  run_all(ctx);
  REQUIRE_FALSE(r2.ec);
  REQUIRE(r2.n >= 1);
  next_result rest;
  s.async_next_chunk(rest.chunk_handler());
  run_all(ctx);
  CHECK_FALSE(rest.ec);
  CHECK(rest.data == std::string("next").substr(r2.n));
}

TEST_CASE("byte_stream: async_read_some with a zero-size buffer completes with 0, not inline") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  std::string expected = "after";
  SECTION("nothing queued") {}
  SECTION("data queued") {
    w.write("untouched");
    expected = "untouchedafter";
  }
  size_result r;
  s.async_read_some(asio::mutable_buffer(), r.handler());
  CHECK(r.calls == 0);
  CHECK(r.ec == not_called);
  poll_until(ctx, [&] { return r.calls > 0; });
  CHECK(r.calls == 1);
  CHECK_FALSE(r.ec);
  CHECK(r.n == 0);
  w.write("after");
  w.close();
  // nothing was consumed by the zero-size read
  std::string all;
  for (const auto& c : drain(ctx, s)) all += c;
  CHECK(all == expected);
}

TEST_CASE("byte_stream: async_read_some waits for data, then reports eof after the last byte") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  std::array<char, 16> buf{};
  size_result r;
  s.async_read_some(asio::buffer(buf), r.handler());
  poll(ctx);
  CHECK(r.calls == 0);
  w.write("late");
  poll_until(ctx, [&] { return r.calls > 0; });
  CHECK_FALSE(r.ec);
  CHECK(std::string(buf.data(), r.n) == std::string("late").substr(0, r.n));

  w.close();
  std::string rest;
  for (int i = 0; i < 10; ++i) {
    size_result more;
    s.async_read_some(asio::buffer(buf), more.handler());
    run_all(ctx);
    if (more.ec) {
      CHECK(more.ec == asio::error::eof);
      CHECK(more.n == 0);
      break;
    }
    rest.append(buf.data(), more.n);
  }
  CHECK(rest == std::string("late").substr(r.n));
}

TEST_CASE("byte_stream: asio::async_read with a dynamic buffer reads everything until eof") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  auto s2 = w.stream();
  const auto big = make_bytes(150000, 8);  // more than one async_read_some step of asio::async_read
  w.write("small|");
  w.write(big);
  w.write("|end");
  w.close();
  const std::string expected = "small|" + to_string(big) + "|end";

  SECTION("with as_tuple") {
    auto [ec, n, text] = run_coro(ctx, [&]() -> asio::awaitable<std::tuple<bytecast::error_code, std::size_t, std::string>> {
      std::string str;
      auto [e, k] = co_await asio::async_read(s, asio::dynamic_buffer(str), as_tuple(asio::use_awaitable));
      co_return std::tuple{e, k, str};
    }());
    CHECK(ec == asio::error::eof);
    CHECK(n == expected.size());
    CHECK(text == expected);
  }
  SECTION("with redirect_error") {
    auto [ec, n, text] = run_coro(ctx, [&]() -> asio::awaitable<std::tuple<bytecast::error_code, std::size_t, std::string>> {
      std::string str;
      bytecast::error_code e;
      auto k = co_await asio::async_read(s2, asio::dynamic_buffer(str), asio::redirect_error(asio::use_awaitable, e));
      co_return std::tuple{e, k, str};
    }());
    CHECK(ec == asio::error::eof);
    CHECK(n == expected.size());
    CHECK(text == expected);
  }
}

TEST_CASE("byte_stream: asio::async_read of an exact size spans chunk boundaries") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  w.write("abc");
  w.write("defg");
  w.write("hij");
  std::array<char, 5> first{};
  std::array<char, 5> second{};
  size_result r1, r2;
  asio::async_read(s, asio::buffer(first), r1.handler());
  run_all(ctx);
  CHECK_FALSE(r1.ec);
  CHECK(r1.n == 5);
  CHECK(std::string(first.data(), 5) == "abcde");
  asio::async_read(s, asio::buffer(second), r2.handler());
  run_all(ctx);
  CHECK_FALSE(r2.ec);
  CHECK(r2.n == 5);
  CHECK(std::string(second.data(), 5) == "fghij");
}

// ---------------------------------------------------------------------------------------------
// Never inline; executors
// ---------------------------------------------------------------------------------------------

// Bound to another io_context: the rule for every stream kind, in stream_rules_test.cpp.
TEST_CASE("byte_stream: async_read_some and async_next_chunk completion handlers run on their associated executor") {
  asio::io_context ctx;  // the writer's and stream's executor
  bytecast::byte_writer w(ctx);
  auto s = w.stream();

  SECTION("bound to a strand") {
    auto strand = asio::make_strand(ctx);
    bool on_strand = false;
    std::size_t n = 0;
    std::array<char, 8> buf{};
    w.write("strand");
    s.async_read_some(asio::buffer(buf), asio::bind_executor(strand, [&](bytecast::error_code, std::size_t k) {
      on_strand = strand.running_in_this_thread();
      n = k;
    }));
    run_all(ctx);
    CHECK(on_strand);
    CHECK(n >= 1);
  }
  SECTION("by default the stream's executor") {
    bool on_ctx = false;
    int calls = 0;
    s.async_next_chunk([&](bytecast::error_code, bytecast::chunk) {
      ++calls;
      on_ctx = ctx.get_executor().running_in_this_thread();
    });
    w.write("default");
    run_all(ctx);
    CHECK(calls == 1);
    CHECK(on_ctx);
  }
}

TEST_CASE("byte_stream: a pending read keeps its io_context running") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  next_result r;
  s.async_next(r.handler());
  std::atomic<bool> run_returned{false};
  std::thread io([&] {
    ctx.run_for(60s);
    run_returned = true;
  });
  std::this_thread::sleep_for(50ms);
  const bool returned_early = run_returned.load();
  w.write("kept alive");
  io.join();
  CHECK_FALSE(returned_early);
  CHECK(r.calls == 1);
  CHECK(r.data == "kept alive");
}

// ---------------------------------------------------------------------------------------------
// Completion tokens
// ---------------------------------------------------------------------------------------------

TEST_CASE("byte_stream: every read works with a plain callback") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  w.write("cb1");
  w.write("cb2");
  w.write("cb3");
  w.close();
  any_read<byte_kind> a(read_op::next), b(read_op::next_chunk), c(read_op::read_some);
  a.start(s);
  run_all(ctx);
  b.start(s);
  run_all(ctx);
  c.start(s);
  run_all(ctx);
  CHECK(a.value == "cb1");
  CHECK(b.value == "cb2");
  CHECK(c.value == "cb3");
  CHECK(c.n == 3);
}

TEST_CASE("byte_stream: every read works with use_awaitable and throws eof after the end") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  w.write("aw1");
  w.write("aw2");
  w.write("aw3");
  w.close();
  auto got = run_coro(ctx, [&]() -> asio::awaitable<std::vector<std::string>> {
    std::vector<std::string> out;
    auto b = co_await s.async_next(asio::use_awaitable);
    out.push_back(to_string(b));
    bytecast::chunk c = co_await s.async_next_chunk(asio::use_awaitable);
    out.push_back(to_string(c.bytes()));
    std::array<char, 8> buf{};
    std::size_t n = co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
    out.emplace_back(buf.data(), n);
    auto sentinel = co_await s.async_next(asio::use_awaitable);
    out.push_back(sentinel.empty() ? "<sentinel>" : "<data>");
    try {
      co_await s.async_next(asio::use_awaitable);
      out.push_back("<no throw>");
    } catch (const bytecast::system_error& e) {
      out.push_back(e.code() == asio::error::eof ? "<eof>" : e.code().message());
    }
    try {
      co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
      out.push_back("<no throw>");
    } catch (const bytecast::system_error& e) {
      out.push_back(e.code() == asio::error::eof ? "<eof>" : e.code().message());
    }
    co_return out;
  }());
  CHECK(got == std::vector<std::string>{"aw1", "aw2", "aw3", "<sentinel>", "<eof>", "<eof>"});
}

TEST_CASE("byte_stream: every read works with use_future") {
  asio::io_context ctx;
  auto work = asio::make_work_guard(ctx);
  std::thread io([&] { ctx.run_for(120s); });
  {
    bytecast::byte_writer w(ctx);
    auto s = w.stream();

    auto f1 = s.async_next(asio::use_future);
    w.write("fut1");  // written after the read was started
    REQUIRE(f1.wait_for(30s) == std::future_status::ready);
    CHECK(to_string(f1.get()) == "fut1");

    w.write("fut2");
    auto f2 = s.async_next_chunk(asio::use_future);
    REQUIRE(f2.wait_for(30s) == std::future_status::ready);
    CHECK(to_string(f2.get().bytes()) == "fut2");

    w.write("fut3");
    std::array<char, 8> buf{};
    auto f3 = s.async_read_some(asio::buffer(buf), asio::use_future);
    REQUIRE(f3.wait_for(30s) == std::future_status::ready);
    const auto n = f3.get();
    CHECK(std::string(buf.data(), n) == "fut3");

    w.close();
    auto f4 = s.async_next(asio::use_future);
    REQUIRE(f4.wait_for(30s) == std::future_status::ready);
    CHECK(f4.get().empty());

    auto f5 = s.async_next_chunk(asio::use_future);
    REQUIRE(f5.wait_for(30s) == std::future_status::ready);
    bool threw_eof = false;
    try {
      (void)f5.get();
    } catch (const bytecast::system_error& e) {
      threw_eof = e.code() == asio::error::eof;
    }
    CHECK(threw_eof);
  }
  work.reset();
  io.join();
}

TEST_CASE("byte_stream: every read works with deferred") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();

  // A deferred operation starts only when it is invoked.
  auto op1 = s.async_next(deferred);
  auto op2 = s.async_next_chunk(deferred);
  std::array<char, 8> buf{};
  auto op3 = s.async_read_some(asio::buffer(buf), deferred);
  w.write("def1");
  w.write("def2");
  w.write("def3");
  w.close();

  next_result r1, r2;
  size_result r3;
  std::move(op1)(r1.handler());
  run_all(ctx);
  std::move(op2)(r2.chunk_handler());
  run_all(ctx);
  std::move(op3)(r3.handler());
  run_all(ctx);
  CHECK(r1.data == "def1");
  CHECK(r2.data == "def2");
  CHECK_FALSE(r3.ec);
  CHECK(std::string(buf.data(), r3.n) == "def3");

  // and awaited through use_awaitable
  auto sentinel_empty = run_coro(ctx, [&]() -> asio::awaitable<bool> {
    auto b = co_await s.async_next(deferred)(asio::use_awaitable);
    co_return b.empty();
  }());
  CHECK(sentinel_empty);
}

TEST_CASE("byte_stream: every read works with as_tuple") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  w.write("tup1");
  w.write("tup2");
  w.write("tup3");
  w.close();
  auto got = run_coro(ctx, [&]() -> asio::awaitable<std::vector<std::string>> {
    std::vector<std::string> out;
    auto [e1, b] = co_await s.async_next(as_tuple(asio::use_awaitable));
    out.push_back(e1 ? e1.message() : to_string(b));
    auto [e2, c] = co_await s.async_next_chunk(as_tuple(asio::use_awaitable));
    out.push_back(e2 ? e2.message() : to_string(c.bytes()));
    std::array<char, 8> buf{};
    auto [e3, n] = co_await s.async_read_some(asio::buffer(buf), as_tuple(asio::use_awaitable));
    out.push_back(e3 ? e3.message() : std::string(buf.data(), n));
    auto [e4, sentinel] = co_await s.async_next(as_tuple(asio::use_awaitable));
    out.push_back(!e4 && sentinel.empty() ? "<sentinel>" : "<unexpected>");
    auto [e5, none] = co_await s.async_next_chunk(as_tuple(asio::use_awaitable));
    out.push_back(e5 == asio::error::eof && none.empty() ? "<eof>" : "<unexpected>");
    co_return out;
  }());
  CHECK(got == std::vector<std::string>{"tup1", "tup2", "tup3", "<sentinel>", "<eof>"});

  // as_tuple with a callback
  std::tuple<bytecast::error_code, std::span<const std::byte>> result{not_called, {}};
  int calls = 0;
  s.async_next(as_tuple([&](std::tuple<bytecast::error_code, std::span<const std::byte>> t) {
    ++calls;
    result = t;
  }));
  CHECK(calls == 0);
  run_all(ctx);
  CHECK(calls == 1);
  CHECK(std::get<0>(result) == asio::error::eof);
}

TEST_CASE("byte_stream: every read works with redirect_error") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  w.write("red1");
  w.write("red2");
  w.write("red3");
  w.close();
  auto got = run_coro(ctx, [&]() -> asio::awaitable<std::vector<std::string>> {
    std::vector<std::string> out;
    bytecast::error_code ec = not_called;
    auto b = co_await s.async_next(asio::redirect_error(asio::use_awaitable, ec));
    out.push_back(ec ? ec.message() : to_string(b));
    ec = not_called;
    auto c = co_await s.async_next_chunk(asio::redirect_error(asio::use_awaitable, ec));
    out.push_back(ec ? ec.message() : to_string(c.bytes()));
    ec = not_called;
    std::array<char, 8> buf{};
    auto n = co_await s.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    out.push_back(ec ? ec.message() : std::string(buf.data(), n));
    ec = not_called;
    auto sentinel = co_await s.async_next(asio::redirect_error(asio::use_awaitable, ec));
    out.push_back(!ec && sentinel.empty() ? "<sentinel>" : "<unexpected>");
    ec = {};
    auto none = co_await s.async_next(asio::redirect_error(asio::use_awaitable, ec));
    out.push_back(ec == asio::error::eof && none.empty() ? "<eof>" : "<unexpected>");
    ec = {};
    auto zero = co_await s.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    out.push_back(ec == asio::error::eof && zero == 0 ? "<eof>" : "<unexpected>");
    co_return out;
  }());
  CHECK(got == std::vector<std::string>{"red1", "red2", "red3", "<sentinel>", "<eof>", "<eof>"});
}

// ---------------------------------------------------------------------------------------------
// One operation at a time
// ---------------------------------------------------------------------------------------------

TEST_CASE("byte_stream: a second read while one is pending fails with already_started and leaves the first untouched") {
  const auto first_op = GENERATE(read_op::next, read_op::next_chunk, read_op::read_some);
  const auto second_op = GENERATE(read_op::next, read_op::next_chunk, read_op::read_some);
  CAPTURE(name(first_op), name(second_op));
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  any_read<byte_kind> first(first_op), second(second_op);
  first.start(s);
  poll(ctx);
  REQUIRE(first.calls == 0);
  second.start(s);
  CHECK(second.calls == 0);  // not inline
  poll_until(ctx, [&] { return second.calls > 0; });
  CHECK(second.ec == asio::error::already_started);
  CHECK(second.empty());
  CHECK(first.calls == 0);

  w.write("abc");
  poll_until(ctx, [&] { return first.calls > 0; });
  CHECK(first.calls == 1);
  CHECK_FALSE(first.ec);
  // async_read_some may return only a prefix of the chunk; the rest follows
  REQUIRE(first.value);
  CHECK(std::string("abc").rfind(*first.value, 0) == 0);
  CHECK(second.calls == 1);
  // nothing was lost or consumed by the rejected read
  w.write("def");
  w.close();
  std::string all = *first.value;
  for (const auto& c : drain(ctx, s)) all += c;
  CHECK(all == "abcdef");
}

// ---------------------------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------------------------

TEST_CASE("byte_stream: emitting a cancellation after the read completed has no effect") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  asio::cancellation_signal sig;
  next_result r;
  s.async_next(asio::bind_cancellation_slot(sig.slot(), r.handler()));
  w.write("done");
  run_all(ctx);
  REQUIRE(r.calls == 1);
  CHECK(r.data == "done");
  sig.emit(asio::cancellation_type::terminal);  // the operation's slot handler must be gone
  poll(ctx);
  CHECK(r.calls == 1);
  next_result r2;
  s.async_next(r2.handler());
  sig.emit(asio::cancellation_type::terminal);  // not bound to r2: no effect
  w.write("next");
  run_all(ctx);
  CHECK(r2.calls == 1);
  CHECK_FALSE(r2.ec);
  CHECK(r2.data == "next");
}

TEST_CASE("byte_stream: async_next, async_next_chunk and async_read_some raced by a timer with || time out and lose "
          "no chunk") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  auto got = run_coro(ctx, [&]() -> asio::awaitable<std::vector<std::string>> {
    std::vector<std::string> out;
    asio::steady_timer timer(co_await asio::this_coro::executor);

    timer.expires_after(10ms);
    auto r1 = co_await (s.async_next(asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
    out.push_back(r1.index() == 1 ? "<timeout>" : to_string(std::get<0>(r1)));

    w.write("arrived");
    timer.expires_after(30s);
    auto r2 = co_await (s.async_next(asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
    out.push_back(r2.index() == 1 ? "<timeout>" : to_string(std::get<0>(r2)));

    // The chunk arrives while the timer is running.
    timer.expires_after(30s);
    asio::steady_timer later(co_await asio::this_coro::executor, 20ms);
    later.async_wait([&](bytecast::error_code) { w.write("during wait"); });
    auto r3 = co_await (s.async_next_chunk(asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
    out.push_back(r3.index() == 1 ? "<timeout>" : to_string(std::get<0>(r3).bytes()));

    // Several timeouts in a row, then the data.
    for (int i = 0; i < 5; ++i) {
      timer.expires_after(1ms);
      auto r = co_await (s.async_next(asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
      out.push_back(r.index() == 1 ? "<timeout>" : to_string(std::get<0>(r)));
    }
    w.write("finally");
    std::array<char, 16> buf{};
    timer.expires_after(30s);
    auto r4 = co_await (s.async_read_some(asio::buffer(buf), asio::use_awaitable) ||
                        timer.async_wait(asio::use_awaitable));
    out.push_back(r4.index() == 1 ? "<timeout>" : std::string(buf.data(), std::get<0>(r4)));
    co_return out;
  }());
  CHECK(got == std::vector<std::string>{"<timeout>", "arrived", "during wait", "<timeout>", "<timeout>",
                                        "<timeout>", "<timeout>", "<timeout>", "finally"});
}
