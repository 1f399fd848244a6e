// Tests for bytecast::basic_typed_writer / basic_typed_stream (typed.hpp): what only typed streams
// have: one value per stream, the id counter shared with byte writers, the minimal requirements
// on T, async_next's completion tokens with std::optional<T>, and writer threads racing on a
// multi-threaded io_context. The rules byte and typed streams share are in stream_rules_test.cpp.
#include "test_util.hpp"

#include <atomic>
#include <memory>
#include <optional>
#include <type_traits>

using namespace bytecast_test;

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
// Completion tokens
// ---------------------------------------------------------------------------------------------

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
