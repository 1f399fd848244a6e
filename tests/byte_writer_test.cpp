// Tests for bytecast::basic_byte_writer (byte_writer.hpp): what only byte writers have (bytes,
// buffer sequences, bytes_written, the Asio write stream surface). The rules byte and typed
// writers share are in stream_rules_test.cpp.
#include "test_util.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <type_traits>

using namespace bytecast_test;

TEST_CASE("byte_writer: the aliases and member types are as documented") {
  CHECK(std::is_same_v<bytecast::byte_writer, bytecast::basic_byte_writer<>>);
  CHECK(std::is_same_v<bytecast::byte_stream, bytecast::basic_byte_stream<>>);
  CHECK(std::is_same_v<bytecast::basic_byte_writer<>, bytecast::basic_byte_writer<asio::any_io_executor>>);
  CHECK(std::is_same_v<bytecast::byte_writer::executor_type, asio::any_io_executor>);
  CHECK(std::is_same_v<decltype(std::declval<bytecast::byte_writer&>().stream()), bytecast::byte_stream>);
  CHECK(std::is_same_v<decltype(std::declval<const bytecast::byte_writer&>().id()), std::uint64_t>);
  CHECK(noexcept(std::declval<const bytecast::byte_writer&>().id()));
  CHECK(noexcept(std::declval<const bytecast::byte_writer&>().get_executor()));
  CHECK(noexcept(std::declval<const bytecast::byte_writer&>().is_open()));
  CHECK(noexcept(std::declval<const bytecast::byte_writer&>().bytes_written()));
  CHECK(noexcept(std::declval<const bytecast::byte_writer&>().stream_count()));
  CHECK(
      std::is_same_v<decltype(std::declval<const bytecast::byte_writer&>().bytes_written()), std::uint64_t>);
  CHECK(std::is_same_v<decltype(std::declval<const bytecast::byte_writer&>().stream_count()), std::size_t>);
}

TEST_CASE("byte_writer: the context constructor accepts only execution contexts and is explicit") {
  CHECK(std::is_constructible_v<bytecast::byte_writer, asio::io_context&>);
  CHECK(std::is_constructible_v<bytecast::byte_writer, asio::thread_pool&>);
  CHECK(std::is_constructible_v<bytecast::byte_writer, const asio::any_io_executor&>);
  CHECK_FALSE(std::is_constructible_v<bytecast::byte_writer, int&>);
  CHECK_FALSE(std::is_constructible_v<bytecast::byte_writer, std::string&>);
  CHECK_FALSE(std::is_convertible_v<asio::io_context&, bytecast::byte_writer>);
  CHECK_FALSE(std::is_convertible_v<const asio::any_io_executor&, bytecast::byte_writer>);
}

TEST_CASE("byte_writer: ids are process-unique and increase with each new writer") {
  asio::io_context ctx;
  bytecast::byte_writer a(ctx);
  bytecast::byte_writer b(ctx);
  bytecast::byte_writer c(ctx.get_executor());
  CHECK(a.id() >= 1);
  CHECK(b.id() > a.id());
  CHECK(c.id() > b.id());
  // Writers created and destroyed in between never reuse an id.
  std::uint64_t last = c.id();
  for (int i = 0; i < 10; ++i) {
    bytecast::byte_writer tmp(ctx);
    CHECK(tmp.id() > last);
    last = tmp.id();
  }
  bytecast::byte_writer d(ctx);
  CHECK(d.id() > last);
}

TEST_CASE("byte_writer: ids are unique when writers are created on many threads at once") {
  asio::io_context ctx;
  constexpr int threads = 4, per_thread = 200;
  std::vector<std::vector<std::uint64_t>> ids(threads);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        bytecast::byte_writer w(ctx);
        ids[t].push_back(w.id());
      }
    });
  for (auto& t : ts) t.join();
  std::vector<std::uint64_t> all;
  for (auto& v : ids) {
    for (std::size_t i = 1; i < v.size(); ++i) CHECK(v[i] > v[i - 1]);
    all.insert(all.end(), v.begin(), v.end());
  }
  std::sort(all.begin(), all.end());
  CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());
  CHECK(all.size() == std::size_t{threads * per_thread});
}

TEST_CASE("byte_writer: can be constructed from an io_context and from an executor") {
  asio::io_context ctx;
  SECTION("from the io_context") {
    bytecast::byte_writer w(ctx);
    CHECK(w.get_executor() == asio::any_io_executor(ctx.get_executor()));
    CHECK(w.is_open());
    auto s = w.stream();
    CHECK(s.get_executor() == w.get_executor());
    w.write("ctx");
    CHECK(next_now(ctx, s).data == "ctx");
  }
  SECTION("from an executor") {
    bytecast::byte_writer w(ctx.get_executor());
    CHECK(w.get_executor() == asio::any_io_executor(ctx.get_executor()));
    auto s = w.stream();
    w.write("ex");
    CHECK(next_now(ctx, s).data == "ex");
  }
  SECTION("from a strand") {
    auto strand = asio::make_strand(ctx);
    bytecast::byte_writer w(strand);
    CHECK(w.get_executor() == asio::any_io_executor(strand));
    auto s = w.stream();
    CHECK(s.get_executor() == asio::any_io_executor(strand));
    w.write("strand");
    CHECK(next_now(ctx, s).data == "strand");
  }
}

TEST_CASE("byte_writer: works with a concrete executor type") {
  using ex_t = asio::io_context::executor_type;
  asio::io_context ctx;
  bytecast::basic_byte_writer<ex_t> w(ctx);
  CHECK(std::is_same_v<decltype(w)::executor_type, ex_t>);
  CHECK(std::is_same_v<decltype(w.stream()), bytecast::basic_byte_stream<ex_t>>);
  CHECK(std::is_same_v<bytecast::basic_byte_stream<ex_t>::executor_type, ex_t>);
  CHECK(w.get_executor() == ctx.get_executor());
  auto s = w.stream();
  CHECK(s.get_executor() == ctx.get_executor());
  w.write("typed executor");
  w.close();
  auto r = next_now(ctx, s);
  CHECK_FALSE(r.ec);
  CHECK(r.data == "typed executor");
  auto end = next_now(ctx, s);
  CHECK_FALSE(end.ec);
  CHECK(end.empty_span);

  bytecast::basic_byte_writer<asio::strand<ex_t>> ws(asio::make_strand(ctx));
  auto ss = ws.stream();
  ws.write("strand executor");
  CHECK(next_now(ctx, ss).data == "strand executor");
}

TEST_CASE("byte_writer: works on a thread_pool") {
  asio::thread_pool pool(2);
  bytecast::byte_writer w(pool);
  auto s = w.stream();
  w.write("pool");
  w.close();
  auto f = s.async_next_chunk(asio::use_future);
  REQUIRE(f.wait_for(30s) == std::future_status::ready);
  auto c = f.get();
  CHECK(to_string(c.bytes()) == "pool");
  auto f2 = s.async_next_chunk(asio::use_future);
  REQUIRE(f2.wait_for(30s) == std::future_status::ready);
  CHECK(f2.get().empty());
  pool.join();
}

TEST_CASE("byte_writer: write returns the size and delivers the bytes as one chunk") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  const auto payload = make_bytes(1000, 1);
  CHECK(w.write(std::span<const std::byte>(payload)) == 1000);
  bytecast::error_code ec = asio::error::broken_pipe;  // must be cleared on success
  CHECK(w.write(std::span<const std::byte>(payload).first(10), ec) == 10);
  CHECK_FALSE(ec);
  w.close();

  auto r1 = next_now(ctx, s);
  CHECK_FALSE(r1.ec);
  CHECK(r1.data == to_string(payload));
  auto r2 = next_now(ctx, s);
  CHECK(r2.data == to_string(std::span<const std::byte>(payload).first(10)));
  auto end = next_now(ctx, s);
  CHECK_FALSE(end.ec);
  CHECK(end.empty_span);
}

TEST_CASE("byte_writer: the caller's buffer may be reused as soon as write returns") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  std::string buf = "first";
  w.write(buf);
  buf = "XXXXX";
  std::memset(buf.data(), 'Z', buf.size());
  w.write(buf);
  buf.assign(5, '\0');
  auto r1 = next_now(ctx, s);
  auto r2 = next_now(ctx, s);
  CHECK(r1.data == "first");
  CHECK(r2.data == "ZZZZZ");
}

TEST_CASE("byte_writer: write of a string_view sends its characters as bytes") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  std::string_view text = "hello, world";
  CHECK(w.write(text) == text.size());
  const std::string with_nul("a\0b", 3);
  CHECK(w.write(std::string_view(with_nul)) == 3);
  CHECK(next_now(ctx, s).data == "hello, world");
  CHECK(next_now(ctx, s).data == with_nul);
}

TEST_CASE("byte_writer: an empty write delivers nothing and returns 0") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  CHECK(w.write(std::span<const std::byte>{}) == 0);
  CHECK(w.write(std::string_view{}) == 0);
  bytecast::error_code ec;
  CHECK(w.write(std::span<const std::byte>{}, ec) == 0);
  CHECK_FALSE(ec);
  CHECK(w.write_some(asio::const_buffer{}) == 0);
  CHECK(s.queued_chunks() == 0);
  CHECK(s.queued_bytes() == 0);
  CHECK(w.bytes_written() == 0);

  w.write("x");
  w.close();
  auto r = next_now(ctx, s);
  CHECK(r.data == "x");
  auto end = next_now(ctx, s);
  CHECK_FALSE(end.ec);
  CHECK(end.empty_span);  // no empty data chunk was queued before the sentinel
}

// write(string_view) after close throws broken_pipe, for both kinds of writer: stream_rules_test.cpp.
TEST_CASE("byte_writer: write(span) and write(span, ec) after close fail with broken_pipe and deliver nothing") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  w.write("before");
  w.close();
  const auto written = w.bytes_written();

  CHECK_THROWS_AS(w.write(as_bytes("after")), bytecast::system_error);

  bytecast::error_code ec;
  CHECK(w.write(as_bytes("after"), ec) == 0);
  CHECK(ec == asio::error::broken_pipe);
  CHECK(w.bytes_written() == written);

  CHECK(next_now(ctx, s).data == "before");
  auto end = next_now(ctx, s);
  CHECK_FALSE(end.ec);
  CHECK(end.empty_span);
  auto eof = next_now(ctx, s);
  CHECK(eof.ec == asio::error::eof);
}

TEST_CASE("byte_writer: write_some and async_write_some after close fail with broken_pipe") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  w.close();
  bytecast::error_code ec;
  CHECK(w.write_some(asio::buffer(std::string_view("x")), ec) == 0);
  CHECK(ec == asio::error::broken_pipe);
  CHECK_THROWS_AS(w.write_some(asio::buffer(std::string_view("x"))), bytecast::system_error);

  size_result r;
  w.async_write_some(asio::buffer(std::string_view("x")), r.handler());
  CHECK(r.calls == 0);
  run_all(ctx);
  CHECK(r.calls == 1);
  CHECK(r.ec == asio::error::broken_pipe);
  CHECK(r.n == 0);
  auto end = next_now(ctx, s);
  CHECK(end.empty_span);
}

TEST_CASE("byte_writer: bytes_written counts every accepted byte, also with no streams") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  CHECK(w.bytes_written() == 0);
  w.write("abc");
  CHECK(w.bytes_written() == 3);
  w.write(as_bytes("defgh"));
  CHECK(w.bytes_written() == 8);
  std::array<asio::const_buffer, 2> bufs{asio::buffer(std::string_view("12")), asio::buffer(std::string_view("345"))};
  w.write_some(bufs);
  CHECK(w.bytes_written() == 13);
  asio::write(w, asio::buffer(std::string_view("xy")));
  CHECK(w.bytes_written() == 15);
  size_result r;
  w.async_write_some(asio::buffer(std::string_view("z")), r.handler());
  run_all(ctx);
  CHECK(w.bytes_written() == 16);
  {
    auto s = w.stream();
    w.write("0123456789");
  }
  CHECK(w.bytes_written() == 26);
  CHECK(w.stream_count() == 0);
  w.close();
  try {
    w.write("rejected");
  } catch (const bytecast::system_error&) {
  }
  CHECK(w.bytes_written() == 26);
}

TEST_CASE("byte_writer: the move constructor transfers the writer and its streams") {
  asio::io_context ctx;
  std::optional<bytecast::byte_writer> w1(std::in_place, ctx);
  const auto id = w1->id();
  auto s = w1->stream();
  w1->write("one");
  bytecast::byte_writer w2(std::move(*w1));
  w1.reset();  // destroying the moved-from writer must not close anything
  CHECK(w2.id() == id);
  CHECK(w2.is_open());
  CHECK(w2.stream_count() == 1);
  CHECK(w2.bytes_written() == 3);
  w2.write("two");
  w2.close();
  CHECK(next_now(ctx, s).data == "one");
  CHECK(next_now(ctx, s).data == "two");
  auto end = next_now(ctx, s);
  CHECK_FALSE(end.ec);
  CHECK(end.empty_span);
  CHECK(s.writer_id() == id);
}

TEST_CASE("byte_writer: move assignment closes the overwritten writer and takes over the other") {
  asio::io_context ctx;
  bytecast::byte_writer target(ctx);
  auto old_stream = target.stream();
  target.write("old");

  std::optional<bytecast::byte_writer> source(std::in_place, ctx);
  const auto id = source->id();
  auto s = source->stream();
  target = std::move(*source);
  source.reset();

  CHECK(target.id() == id);
  CHECK(target.is_open());
  target.write("new");
  target.close();

  CHECK(next_now(ctx, old_stream).data == "old");
  auto old_end = next_now(ctx, old_stream);
  CHECK_FALSE(old_end.ec);
  CHECK(old_end.empty_span);

  CHECK(next_now(ctx, s).data == "new");
  auto end = next_now(ctx, s);
  CHECK_FALSE(end.ec);
  CHECK(end.empty_span);
}

TEST_CASE("byte_writer: write_some gathers a buffer sequence into one chunk") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  std::string_view first = "hello", second = "world";
  std::array<asio::const_buffer, 2> bufs{asio::buffer(first), asio::buffer(second)};
  CHECK(w.write_some(bufs) == 10);
  bytecast::error_code ec = asio::error::broken_pipe;
  std::array<asio::const_buffer, 3> three{asio::buffer(first), asio::const_buffer{}, asio::buffer(second)};
  CHECK(w.write_some(three, ec) == 10);
  CHECK_FALSE(ec);
  w.close();
  CHECK(s.queued_chunks() >= 2);
  auto r1 = next_now(ctx, s);
  CHECK(r1.data == "helloworld");
  auto r2 = next_now(ctx, s);
  CHECK(r2.data == "helloworld");
  auto end = next_now(ctx, s);
  CHECK_FALSE(end.ec);
  CHECK(end.empty_span);
}

TEST_CASE("byte_writer: asio::write works on it as a SyncWriteStream") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  const std::string text = "synchronous write through asio::write";
  CHECK(asio::write(w, asio::buffer(text)) == text.size());
  bytecast::error_code ec;
  CHECK(asio::write(w, asio::buffer(std::string_view("!")), ec) == 1);
  CHECK_FALSE(ec);
  w.close();

  std::string all;
  for (const auto& c : drain(ctx, s)) all += c;
  CHECK(all == text + "!");
}

TEST_CASE("byte_writer: async_write_some completes, not inline, with the whole size") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  std::string_view a = "async ", b = "write";
  std::array<asio::const_buffer, 2> bufs{asio::buffer(a), asio::buffer(b)};
  size_result r;
  w.async_write_some(bufs, r.handler());
  CHECK(r.calls == 0);
  CHECK(r.ec == not_called);
  run_all(ctx);
  CHECK(r.calls == 1);
  CHECK_FALSE(r.ec);
  CHECK(r.n == 11);
  CHECK(w.bytes_written() == 11);
  CHECK(next_now(ctx, s).data == "async write");  // gathered into one chunk
}

TEST_CASE("byte_writer: async_write_some initiated on its own executor still does not complete inline") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  size_result r;
  bool checked = false;
  asio::post(ctx, [&] {
    w.async_write_some(asio::buffer(std::string_view("in handler")), r.handler());
    CHECK(r.calls == 0);
    checked = true;
  });
  run_all(ctx);
  CHECK(checked);
  CHECK(r.calls == 1);
  CHECK(r.n == 10);
}

TEST_CASE("byte_writer: asio::async_write works on it as an AsyncWriteStream") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  const auto payload = make_bytes(200000, 4);  // larger than one async_write_some step of asio::async_write
  size_result r;
  asio::async_write(w, asio::buffer(payload), r.handler());
  CHECK(r.calls == 0);
  run_all(ctx);
  CHECK(r.calls == 1);
  CHECK_FALSE(r.ec);
  CHECK(r.n == payload.size());

  auto n = run_coro(ctx, [&]() -> asio::awaitable<std::size_t> {
    co_return co_await asio::async_write(w, asio::buffer(std::string_view("tail")), asio::use_awaitable);
  }());
  CHECK(n == 4);
  w.close();

  std::string all;
  for (const auto& c : drain(ctx, s)) all += c;
  // Built in two steps: g++ 12 at -O2 reports a bogus -Warray-bounds for `string&& + "tail"` here.
  std::string expected = to_string(payload);
  expected += "tail";
  CHECK(all == expected);
}

TEST_CASE("byte_writer: write and close called on the reader's executor do not run its handler inline") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  next_result r, end;
  int checks = 0;
  s.async_next(r.handler());
  asio::post(ctx, [&] {
    w.write("inside");
    CHECK(r.calls == 0);
    ++checks;
  });
  run_all(ctx);
  CHECK(checks == 1);
  CHECK(r.calls == 1);
  CHECK(r.data == "inside");

  s.async_next(end.handler());
  asio::post(ctx, [&] {
    w.close();
    CHECK(end.calls == 0);
    ++checks;
  });
  run_all(ctx);
  CHECK(checks == 2);
  CHECK(end.calls == 1);
  CHECK(end.empty_span);
}

TEST_CASE("byte_writer: the destructor closes like close()") {
  asio::io_context ctx;
  std::optional<bytecast::byte_writer> w(std::in_place, ctx);
  auto s = w->stream();
  next_result pending;
  s.async_next(pending.handler());
  w->write("last words");
  w.reset();
  CHECK(pending.calls == 0);
  run_all(ctx);
  CHECK(pending.data == "last words");
  auto end = next_now(ctx, s);
  CHECK_FALSE(end.ec);
  CHECK(end.empty_span);
  auto eof = next_now(ctx, s);
  CHECK(eof.ec == asio::error::eof);
}
