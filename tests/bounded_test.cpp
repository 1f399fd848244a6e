// Tests for bounded buffering (API.md section 4: writer_options and overflow_policy in
// options.hpp, and the bounded paths of byte_writer.hpp, byte_stream.hpp and typed.hpp):
// what "full" means, and the three policies wait, drop_oldest and disconnect.
#include "test_util.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <type_traits>

using namespace bytecast_test;
using namespace asio::experimental::awaitable_operators;
using bytecast::overflow_policy;

namespace {

bytecast::writer_options limited(std::size_t queue_limit, overflow_policy policy) {
  bytecast::writer_options o;
  o.queue_limit = queue_limit;
  o.on_overflow = policy;
  return o;
}

const char* name(overflow_policy p) {
  switch (p) {
    case overflow_policy::wait: return "wait";
    case overflow_policy::drop_oldest: return "drop_oldest";
    case overflow_policy::disconnect: return "disconnect";
  }
  return "?";
}

enum class write_kind { async_write, async_write_some, asio_async_write };

const char* name(write_kind k) {
  switch (k) {
    case write_kind::async_write: return "async_write";
    case write_kind::async_write_some: return "async_write_some";
    case write_kind::asio_async_write: return "asio::async_write";
  }
  return "?";
}

// Starts an asynchronous write of `data` (which must outlive the operation) the given way.
template <class Handler>
void start_write(write_kind k, bytecast::byte_writer& w, const std::string& data, Handler&& handler) {
  auto b = asio::buffer(data);
  switch (k) {
    case write_kind::async_write: w.async_write(b, std::forward<Handler>(handler)); break;
    case write_kind::async_write_some: w.async_write_some(b, std::forward<Handler>(handler)); break;
    case write_kind::asio_async_write: asio::async_write(w, b, std::forward<Handler>(handler)); break;
  }
}

// A message of `writer` number `seq`, always 8 bytes: "w1:00042" style.
std::string message(int writer, int seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "w%d:%05d", writer, seq);
  return buf;
}

// Checks one reader's log of message() chunks: each of `writers` x `per_writer` messages exactly
// once, each writer's in order.
void check_each_once_in_order(const std::vector<std::string>& log, int writers, int per_writer) {
  CHECK(log.size() == static_cast<std::size_t>(writers * per_writer));
  std::vector<int> next(static_cast<std::size_t>(writers), 0);
  std::size_t bad = 0;
  for (const auto& m : log) {
    int wi = -1, seq = -1;
    if (std::sscanf(m.c_str(), "w%d:%d", &wi, &seq) != 2 || wi < 0 || wi >= writers ||
        seq != next[static_cast<std::size_t>(wi)]) {
      ++bad;
      continue;
    }
    ++next[static_cast<std::size_t>(wi)];
  }
  CHECK(bad == 0);
  for (int wi = 0; wi < writers; ++wi) CHECK(next[static_cast<std::size_t>(wi)] == per_writer);
}

asio::awaitable<void> yield_once() {
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
}

}  // namespace

// --- the options ---------------------------------------------------------------------------

TEST_CASE("bounded: writer_options defaults to an unbounded writer, the wait policy and no replay", "[bounded]") {
  const bytecast::writer_options o;
  CHECK(o.queue_limit == 0);
  CHECK(o.on_overflow == overflow_policy::wait);
  CHECK(o.replay_limit == 0);
  CHECK(overflow_policy::wait != overflow_policy::drop_oldest);
  CHECK(overflow_policy::drop_oldest != overflow_policy::disconnect);
  CHECK(overflow_policy::wait != overflow_policy::disconnect);
  // An aggregate: designated initializers work.
  const bytecast::writer_options d{.queue_limit = 7, .on_overflow = overflow_policy::disconnect, .replay_limit = 3};
  CHECK(d.queue_limit == 7);
  CHECK(d.on_overflow == overflow_policy::disconnect);
  CHECK(d.replay_limit == 3);
}

TEST_CASE("bounded: every writer takes writer_options as an optional last constructor argument", "[bounded]") {
  using opts = const bytecast::writer_options&;
  CHECK(std::is_constructible_v<bytecast::byte_writer, asio::io_context&, opts>);
  CHECK(std::is_constructible_v<bytecast::byte_writer, const asio::any_io_executor&, opts>);
  CHECK(std::is_constructible_v<bytecast::typed_writer<int>, asio::io_context&, opts>);
  CHECK(std::is_constructible_v<bytecast::typed_writer<int>, const asio::any_io_executor&, opts>);
  CHECK(std::is_constructible_v<bytecast::byte_writer, asio::io_context&>);
  CHECK(std::is_constructible_v<bytecast::typed_writer<int>, asio::io_context&>);
  CHECK_FALSE(std::is_constructible_v<bytecast::byte_writer, int&, opts>);

  // Streams report what they lost; async_write has the documented completion signatures.
  CHECK(std::is_unsigned_v<decltype(std::declval<const bytecast::byte_stream&>().dropped())>);
  CHECK(std::is_unsigned_v<decltype(std::declval<const bytecast::typed_stream<int>&>().dropped())>);
  CHECK(std::is_same_v<decltype(std::declval<bytecast::byte_writer&>().async_write(asio::const_buffer(),
                                                                                   asio::use_awaitable)),
                       asio::awaitable<std::size_t>>);
  CHECK(std::is_same_v<decltype(std::declval<bytecast::typed_writer<int>&>().async_write(1, asio::use_awaitable)),
                       asio::awaitable<void>>);

  asio::io_context ctx;
  bytecast::byte_writer a(ctx, limited(16, overflow_policy::drop_oldest));
  bytecast::byte_writer b(ctx.get_executor(), limited(16, overflow_policy::disconnect));
  bytecast::typed_writer<int> c(ctx, limited(2, overflow_policy::wait));
  bytecast::typed_writer<int> d(ctx.get_executor(), limited(2, overflow_policy::wait));
  CHECK(a.is_open());
  CHECK(b.is_open());
  CHECK(c.is_open());
  CHECK(d.is_open());
}

TEST_CASE("bounded: queue_limit 0 is unbounded under every policy: nothing waits, drops or disconnects",
          "[bounded]") {
  const auto policy = GENERATE(overflow_policy::wait, overflow_policy::drop_oldest, overflow_policy::disconnect);
  CAPTURE(name(policy));
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(0, policy));
  auto slow = w.stream();
  std::vector<std::string> sent;
  for (int i = 0; i < 1000; ++i) {
    sent.push_back(message(0, i) + std::string(92, 'x'));
    bytecast::error_code ec;
    CHECK(w.write(as_bytes(sent.back()), ec) == 100);
    CHECK_FALSE(ec);
  }
  size_result r;
  sent.push_back("async");
  w.async_write(asio::buffer(sent.back()), r.handler());
  poll_until(ctx, [&] { return r.calls > 0; }, 10s);
  CHECK_FALSE(r.ec);
  CHECK(r.n == 5);
  CHECK(slow.queued_chunks() == 1001);
  CHECK(slow.queued_bytes() == 100005);
  CHECK(w.stream_count() == 1);
  CHECK(drain_now(slow) == sent);
  CHECK(slow.dropped() == 0);
}

// --- what "full" means -------------------------------------------------------------------

TEST_CASE("bounded: a stream is full only when its backlog is not empty and backlog + chunk exceeds queue_limit",
          "[bounded]") {
  // Shown with the wait policy, where a full stream makes a synchronous write fail.
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(10, overflow_policy::wait));
  auto s = w.stream();
  bytecast::error_code ec;
  CHECK(w.write(as_bytes("1234"), ec) == 4);
  CHECK_FALSE(ec);
  CHECK(w.write(as_bytes("123456"), ec) == 6);  // 4 + 6 == 10: exactly the limit still fits
  CHECK_FALSE(ec);
  CHECK(s.queued_bytes() == 10);
  CHECK(w.write(as_bytes("x"), ec) == 0);  // 10 + 1 > 10
  CHECK(ec == asio::error::would_block);

  CHECK(read_one(ctx, s, how::try_next) == "1234");
  CHECK(s.queued_bytes() == 6);
  CHECK(w.write(as_bytes("abcde"), ec) == 0);  // 6 + 5 > 10
  CHECK(ec == asio::error::would_block);
  CHECK(w.write(as_bytes("abcd"), ec) == 4);  // 6 + 4 == 10
  CHECK_FALSE(ec);
  CHECK(w.write(as_bytes("y"), ec) == 0);
  CHECK(ec == asio::error::would_block);
  CHECK(drain_now(s) == std::vector<std::string>{"123456", "abcd"});
  CHECK(s.dropped() == 0);
}

TEST_CASE("bounded: a chunk larger than queue_limit always fits into an empty queue", "[bounded]") {
  const auto policy = GENERATE(overflow_policy::wait, overflow_policy::drop_oldest, overflow_policy::disconnect);
  CAPTURE(name(policy));
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(4, policy));
  auto s = w.stream();
  const std::string big(100, 'B');
  for (int round = 0; round < 3; ++round) {
    bytecast::error_code ec;
    CHECK(w.write(as_bytes(big), ec) == 100);
    CHECK_FALSE(ec);
    CHECK(s.queued_bytes() == 100);
    CHECK(w.stream_count() == 1);
    CHECK(drain_now(s) == std::vector<std::string>{big});
  }
  // Asynchronously too: into an empty queue, a big write completes at once.
  size_result r;
  w.async_write(asio::buffer(big), r.handler());
  poll_until(ctx, [&] { return r.calls > 0; }, 10s);
  CHECK_FALSE(r.ec);
  CHECK(r.n == 100);
  CHECK(drain_now(s) == std::vector<std::string>{big});
  CHECK(s.dropped() == 0);
  CHECK(w.bytes_written() == 400);
}

TEST_CASE("bounded: a stream created later starts empty, so it is not full", "[bounded]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(8, overflow_policy::wait));
  auto first = w.stream();
  w.write("aaaaaaaa");
  CHECK(first.queued_bytes() == 8);
  auto second = w.stream();
  CHECK(second.queued_bytes() == 0);
  bytecast::error_code ec;
  CHECK(w.write(as_bytes("b"), ec) == 0);  // the first stream is still full
  CHECK(ec == asio::error::would_block);
  CHECK(drain_now(first) == std::vector<std::string>{"aaaaaaaa"});
  CHECK(w.write(as_bytes("b"), ec) == 1);
  CHECK_FALSE(ec);
  CHECK(drain_now(first) == std::vector<std::string>{"b"});
  CHECK(drain_now(second) == std::vector<std::string>{"b"});
}

// --- wait -------------------------------------------------------------------------------------

TEST_CASE("bounded wait: synchronous writes fail with would_block while a stream is full and deliver to nobody",
          "[bounded]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(8, overflow_policy::wait));
  auto fast = w.stream();
  auto slow = w.stream();
  w.write("aaaa");
  w.write("bbbb");  // the slow stream now holds 8 bytes: full for any chunk
  CHECK(drain_now(fast) == std::vector<std::string>{"aaaa", "bbbb"});
  const auto written = w.bytes_written();
  const std::string text = "cc";
  const std::array<asio::const_buffer, 2> gather{asio::buffer(text.data(), 1), asio::buffer(text.data() + 1, 1)};

  auto expect_throw = [](auto&& write) {
    try {
      write();
      FAIL("no exception");
    } catch (const bytecast::system_error& e) {
      CHECK(e.code() == asio::error::would_block);
    }
  };
  SECTION("write(span) throws") { expect_throw([&] { w.write(as_bytes(text)); }); }
  SECTION("write(string_view) throws") { expect_throw([&] { w.write(std::string_view(text)); }); }
  SECTION("write_some throws") { expect_throw([&] { w.write_some(gather); }); }
  SECTION("asio::write throws") { expect_throw([&] { asio::write(w, asio::buffer(text)); }); }
  SECTION("write(span, ec) reports it") {
    bytecast::error_code ec;
    CHECK(w.write(as_bytes(text), ec) == 0);
    CHECK(ec == asio::error::would_block);
  }
  SECTION("write_some(buffers, ec) reports it") {
    bytecast::error_code ec;
    CHECK(w.write_some(gather, ec) == 0);
    CHECK(ec == asio::error::would_block);
  }
  SECTION("asio::write(w, buffers, ec) reports it") {
    bytecast::error_code ec;
    CHECK(asio::write(w, asio::buffer(text), ec) == 0);
    CHECK(ec == asio::error::would_block);
  }

  // Delivered to nobody: not to the stream that had room, not to the full one.
  CHECK(drain_now(fast).empty());
  CHECK(slow.queued_chunks() == 2);
  CHECK(slow.queued_bytes() == 8);
  CHECK(w.bytes_written() == written);
  CHECK(w.is_open());
  CHECK(w.stream_count() == 2);

  // Once the slow stream made room, the same write goes through, to both.
  CHECK(read_one(ctx, slow, how::try_next) == "aaaa");
  CHECK(w.write(std::string_view(text)) == 2);
  CHECK(drain_now(fast) == std::vector<std::string>{"cc"});
  CHECK(drain_now(slow) == std::vector<std::string>{"bbbb", "cc"});
  CHECK(w.bytes_written() == written + 2);
}

TEST_CASE("bounded wait: async writes complete only once every live stream had room", "[bounded]") {
  const auto kind = GENERATE(write_kind::async_write, write_kind::async_write_some, write_kind::asio_async_write);
  CAPTURE(name(kind));
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(8, overflow_policy::wait));
  auto a = w.stream();
  auto b = w.stream();
  auto c = w.stream();
  w.write("1111");
  w.write("2222");  // all three streams full
  const std::string data = "3333";
  size_result r;
  start_write(kind, w, data, r.handler());
  CHECK(r.calls == 0);  // not inline
  poll(ctx);
  CHECK(r.calls == 0);  // waiting
  for (auto* s : {&a, &b, &c}) CHECK(s->queued_chunks() == 2);  // delivered to nobody yet

  CHECK(read_one(ctx, a, how::try_next) == "1111");
  poll(ctx);
  CHECK(r.calls == 0);  // b and c are still full
  CHECK(a.queued_chunks() == 1);
  CHECK(read_one(ctx, b, how::async_next) == "1111");
  poll(ctx);
  CHECK(r.calls == 0);  // c is still full
  CHECK(read_one(ctx, c, how::async_next_chunk) == "1111");
  poll_until(ctx, [&] { return r.calls > 0; }, 10s);
  CHECK(r.calls == 1);
  CHECK_FALSE(r.ec);
  CHECK(r.n == 4);
  for (auto* s : {&a, &b, &c}) CHECK(drain_now(*s) == std::vector<std::string>{"2222", "3333"});
  CHECK(w.bytes_written() == 12);
}

TEST_CASE("bounded: no async write completes inline, whether it has to wait or not", "[bounded]") {
  const std::size_t limit = GENERATE(std::size_t{0}, std::size_t{8});
  const auto policy = GENERATE(overflow_policy::wait, overflow_policy::drop_oldest, overflow_policy::disconnect);
  const auto kind = GENERATE(write_kind::async_write, write_kind::async_write_some, write_kind::asio_async_write);
  const bool full = GENERATE(false, true);
  CAPTURE(limit, name(policy), name(kind), full);
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(limit, policy));
  auto s = w.stream();
  if (full) w.write("12345678");
  const std::string data = "data";
  size_result r;
  start_write(kind, w, data, r.handler());
  CHECK(r.calls == 0);
  CHECK(r.ec == not_called);
  const bool waits = full && limit != 0 && policy == overflow_policy::wait;
  if (waits) {
    poll(ctx);
    CHECK(r.calls == 0);
    CHECK(read_one(ctx, s, how::try_next) == "12345678");
  }
  poll_until(ctx, [&] { return r.calls > 0; }, 10s);
  CHECK(r.calls == 1);
  CHECK_FALSE(r.ec);
  CHECK(r.n == 4);

  // Initiated from a handler running on the writer's own executor: still not inline.
  bool returned = false, ran_before_return = false;
  size_result r2;
  const std::string more = "more";
  asio::post(ctx, [&] {
    start_write(kind, w, more, [&](bytecast::error_code e, std::size_t n) {
      ran_before_return = !returned;
      r2.handler()(e, n);
    });
    returned = true;
  });
  poll_until(ctx, [&] { return r2.calls > 0; }, 10s);
  CHECK_FALSE(ran_before_return);
  CHECK_FALSE(r2.ec);
}

TEST_CASE("bounded wait: typed async_write waits for room and never completes inline", "[bounded]") {
  asio::io_context ctx;
  bytecast::typed_writer<int> w(ctx, limited(2, overflow_policy::wait));
  auto s = w.stream();
  int calls = 0;
  bytecast::error_code ec = not_called;
  auto handler = [&](bytecast::error_code e) {
    ++calls;
    ec = e;
  };
  w.async_write(1, handler);  // room: completes at once, but not inline
  CHECK(calls == 0);
  poll_until(ctx, [&] { return calls == 1; }, 10s);
  CHECK_FALSE(ec);
  w.write(2);
  w.async_write(3, handler);  // full (two items): waits
  CHECK(calls == 1);
  poll(ctx);
  CHECK(calls == 1);
  CHECK(s.queued_items() == 2);
  CHECK(read_one(ctx, s, how::async_next) == "1");
  poll_until(ctx, [&] { return calls == 2; }, 10s);
  CHECK_FALSE(ec);
  CHECK(drain_now(s) == std::vector<std::string>{"2", "3"});
  CHECK(w.items_written() == 3);
}

TEST_CASE("bounded wait: waiting async writes are delivered in the order they were started", "[bounded]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(8, overflow_policy::wait));
  auto s = w.stream();
  w.write("full....");
  std::vector<std::string> data{"big-chunk-1", "s2", "s3", "big-chunk-4", "s5"};
  std::vector<size_result> r(data.size());
  for (std::size_t i = 0; i < data.size(); ++i) w.async_write(asio::buffer(data[i]), r[i].handler());
  poll(ctx);
  for (auto& x : r) CHECK(x.calls == 0);

  // A synchronous write does not overtake the waiting ones, even a chunk that would fit.
  bytecast::error_code ec;
  CHECK(w.write(as_bytes("x"), ec) == 0);
  CHECK(ec == asio::error::would_block);

  std::vector<std::string> got;
  for (int guard = 0; guard < 100 && got.size() < 6; ++guard) {
    got.push_back(read_one(ctx, s, how::async_next));
    poll(ctx);
  }
  CHECK(got == std::vector<std::string>{"full....", "big-chunk-1", "s2", "s3", "big-chunk-4", "s5"});
  for (std::size_t i = 0; i < data.size(); ++i) {
    CAPTURE(i);
    CHECK(r[i].calls == 1);
    CHECK_FALSE(r[i].ec);
    CHECK(r[i].n == data[i].size());
  }
}

TEST_CASE("bounded wait: several coroutines waiting to write at once: each write delivered exactly once, in each "
          "writer's order, one order for all streams",
          "[bounded]") {
  constexpr int writers = 4, per_writer = 60, readers = 3;
  asio::io_context ctx;
  // 8-byte messages, a limit of 3 of them: the fourth write to a stream waits.
  bytecast::byte_writer w(ctx, limited(24, overflow_policy::wait));
  std::deque<bytecast::byte_stream> streams;
  for (int i = 0; i < readers; ++i) streams.push_back(w.stream());

  int done_writers = 0, completed = 0;
  std::vector<bytecast::error_code> write_errors;
  for (int wi = 0; wi < writers; ++wi)
    asio::co_spawn(
        ctx,
        [&, wi]() -> asio::awaitable<void> {
          for (int seq = 0; seq < per_writer; ++seq) {
            const std::string m = message(wi, seq);
            auto [ec, n] = co_await w.async_write(asio::buffer(m), as_tuple(asio::use_awaitable));
            if (ec || n != m.size()) write_errors.push_back(ec ? ec : make_error_code(asio::error::message_size));
            ++completed;
          }
          if (++done_writers == writers) w.close();
        },
        rethrow{});

  // With nobody reading, three writes fit and the next write of every writer waits.
  poll(ctx);
  CHECK(completed == 3);
  for (auto& s : streams) CHECK(s.queued_chunks() == 3);

  std::vector<std::vector<std::string>> logs(readers);
  for (int r = 0; r < readers; ++r)
    asio::co_spawn(
        ctx,
        [&, r]() -> asio::awaitable<void> {
          auto& s = streams[static_cast<std::size_t>(r)];
          for (int k = 0;; ++k) {
            auto b = co_await s.async_next(asio::use_awaitable);
            if (b.empty()) break;
            logs[static_cast<std::size_t>(r)].push_back(to_string(b));
            // Readers of different speeds: reader r yields r times between reads.
            for (int y = 0; y < r; ++y) co_await yield_once();
            if (s.queued_bytes() > 24 + 8) throw std::runtime_error("backlog above limit + one chunk");
          }
        },
        rethrow{});
  run_all(ctx, 60s);
  CHECK(write_errors.empty());
  CHECK(completed == writers * per_writer);
  for (int r = 0; r < readers; ++r) {
    CAPTURE(r);
    check_each_once_in_order(logs[static_cast<std::size_t>(r)], writers, per_writer);
    CHECK(logs[static_cast<std::size_t>(r)] == logs[0]);
  }
}

TEST_CASE("bounded wait: writers on several threads waiting at once: each write delivered exactly once, in each "
          "writer's order, one order for all streams",
          "[bounded]") {
  constexpr int writers = 3, per_writer = 300, readers = 3;
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(32, overflow_policy::wait));  // four 8-byte messages
  std::deque<bytecast::byte_stream> streams;
  for (int i = 0; i < readers; ++i) streams.push_back(w.stream());

  struct reader_log {
    std::vector<std::string> chunks;
    std::string problem;
    bool sentinel = false;
  };
  std::vector<reader_log> logs(readers);
  for (int r = 0; r < readers; ++r)
    asio::co_spawn(
        asio::make_strand(ctx),
        [&, r]() -> asio::awaitable<void> {
          auto& s = streams[static_cast<std::size_t>(r)];
          auto& log = logs[static_cast<std::size_t>(r)];
          for (;;) {
            auto [ec, b] = co_await s.async_next(as_tuple(asio::use_awaitable));
            if (ec) {
              log.problem = ec.message();
              break;
            }
            if (b.empty()) {
              log.sentinel = true;
              break;
            }
            log.chunks.push_back(to_string(b));
            if (s.queued_bytes() > 32 + 8) log.problem = "backlog above limit + one chunk";
            for (int y = 0; y < r; ++y) co_await yield_once();
          }
        },
        asio::detached);
  std::vector<std::thread> io;
  for (int i = 0; i < 2; ++i) io.emplace_back([&] { ctx.run_for(120s); });

  // Writer 0 waits for each write before the next; the others keep several writes in flight.
  std::vector<std::string> failures(writers);
  std::vector<std::thread> producers;
  for (int wi = 0; wi < writers; ++wi)
    producers.emplace_back([&, wi] {
      const int window = wi == 0 ? 1 : 2 + wi;
      std::deque<std::future<std::size_t>> in_flight;
      std::vector<std::string> msgs;
      for (int seq = 0; seq < per_writer; ++seq) msgs.push_back(message(wi, seq));
      auto settle_one = [&] {
        auto f = std::move(in_flight.front());
        in_flight.pop_front();
        if (f.wait_for(20s) != std::future_status::ready) {
          failures[static_cast<std::size_t>(wi)] = "a write never completed (20 s)";
          return false;
        }
        try {
          if (f.get() != 8) failures[static_cast<std::size_t>(wi)] = "short write";
        } catch (const bytecast::system_error& e) {
          failures[static_cast<std::size_t>(wi)] = e.code().message();
          return false;
        }
        return true;
      };
      bool ok = true;
      for (int seq = 0; seq < per_writer && ok; ++seq) {
        in_flight.push_back(w.async_write(asio::buffer(msgs[static_cast<std::size_t>(seq)]), asio::use_future));
        if (static_cast<int>(in_flight.size()) >= window) ok = settle_one();
      }
      while (ok && !in_flight.empty()) ok = settle_one();
      // On a failure the writes still in flight are abandoned: the close below releases them.
    });
  for (auto& t : producers) t.join();
  w.close();
  for (auto& t : io) t.join();

  for (int wi = 0; wi < writers; ++wi) {
    CAPTURE(wi);
    CHECK(failures[static_cast<std::size_t>(wi)].empty());
    CAPTURE(failures[static_cast<std::size_t>(wi)]);
  }
  for (int r = 0; r < readers; ++r) {
    const auto& log = logs[static_cast<std::size_t>(r)];
    CAPTURE(r, log.problem);
    CHECK(log.problem.empty());
    CHECK(log.sentinel);
    check_each_once_in_order(log.chunks, writers, per_writer);
    CHECK(log.chunks == logs[0].chunks);
  }
}

TEST_CASE("bounded wait: a writer on another thread is woken when the reader makes room just as it starts to wait",
          "[bounded]") {
  // A queue_limit of one chunk and two writes in flight: while the reader (on the io thread)
  // takes a chunk and so makes room, this thread starts the next write, which finds the stream
  // full and waits. The two race on every round; a lost wake-up leaves the writer waiting for
  // room and the reader waiting for data. A race test: it runs many rounds (bounded by a time
  // budget, not a speed check) and FAILS when the writes stop making progress.
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(4, overflow_policy::wait));
  auto s = w.stream();
  std::atomic<long> got{0}, completed{0}, failed_writes{0};
  // A callback loop: the shortest path from "room made" to the next read.
  std::function<void()> read = [&] {
    s.async_next([&](bytecast::error_code ec, std::span<const std::byte> b) {
      if (ec || b.empty()) return;
      got.fetch_add(1);
      read();
    });
  };
  read();
  std::thread io([&] { ctx.run_for(120s); });

  constexpr long rounds = 1'000'000, window = 2;
  const auto budget = std::chrono::steady_clock::now() + 8s;
  std::string failure;
  unsigned jitter = 12345;
  long started = 0;
  for (; started < rounds && failure.empty() && std::chrono::steady_clock::now() < budget; ++started) {
    auto last_progress = std::chrono::steady_clock::now();
    long seen = completed.load();
    while (started - completed.load() >= window) {
      if (completed.load() != seen) {
        seen = completed.load();
        last_progress = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - last_progress > 5s) {
        failure = "no write completed for 5 s after " + std::to_string(seen) + " of " + std::to_string(started) +
                  " writes; the reader had taken " + std::to_string(got.load()) +
                  " chunks, queued_bytes() = " + std::to_string(s.queued_bytes());
        break;
      }
      std::this_thread::yield();
    }
    if (!failure.empty()) break;
    // A little jitter sweeps the moment of the write across the reader's "room made".
    jitter = jitter * 1103515245u + 12345u;
    volatile unsigned spin = (jitter >> 16) % 256;
    while (spin != 0) spin = spin - 1;
    w.async_write(asio::buffer("abcd", 4), [&](bytecast::error_code ec, std::size_t) {
      if (ec) failed_writes.fetch_add(1);
      completed.fetch_add(1);
    });
  }
  // Let the last writes land, then close (which also releases a stuck write with broken_pipe).
  const auto drain_deadline = std::chrono::steady_clock::now() + 5s;
  while (failure.empty() && completed.load() != started) {
    if (std::chrono::steady_clock::now() > drain_deadline) {
      failure = "the last writes never completed: " + std::to_string(completed.load()) + " of " +
                std::to_string(started);
      break;
    }
    std::this_thread::yield();
  }
  w.close();
  io.join();
  CAPTURE(started, completed.load(), failure);
  CHECK(failure.empty());
  CHECK(failed_writes.load() == 0);
  CHECK(completed.load() == started);
  CHECK(got.load() == started);
}

TEST_CASE("bounded wait: a waiting async write cancelled through its slot completes with operation_aborted and "
          "delivers to nobody",
          "[bounded]") {
  const auto type = GENERATE(asio::cancellation_type::terminal, asio::cancellation_type::partial,
                             asio::cancellation_type::total);
  const auto kind = GENERATE(write_kind::async_write, write_kind::async_write_some, write_kind::asio_async_write);
  CAPTURE(static_cast<unsigned>(type), name(kind));
  // asio::async_write itself lets only terminal and partial cancellation through.
  if (kind == write_kind::asio_async_write && type == asio::cancellation_type::total) return;
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(8, overflow_policy::wait));
  auto fast = w.stream();
  auto slow = w.stream();
  w.write("aaaaaaaa");
  CHECK(drain_now(fast) == std::vector<std::string>{"aaaaaaaa"});
  asio::cancellation_signal sig;
  const std::string data = "cancelled";
  size_result r;
  start_write(kind, w, data, asio::bind_cancellation_slot(sig.slot(), r.handler()));
  poll(ctx);
  REQUIRE(r.calls == 0);
  sig.emit(type);
  CHECK(r.calls == 0);  // the completion is posted, not run inside emit()
  poll_until(ctx, [&] { return r.calls > 0; }, 10s);
  CHECK(r.calls == 1);
  CHECK(r.ec == asio::error::operation_aborted);
  CHECK(r.n == 0);
  CHECK(w.bytes_written() == 8);

  // Room now: the cancelled chunk still goes nowhere; the writer works on.
  CHECK(drain_now(slow) == std::vector<std::string>{"aaaaaaaa"});
  poll(ctx);
  CHECK(drain_now(fast).empty());
  CHECK(drain_now(slow).empty());
  CHECK(w.write(std::string_view("next")) == 4);
  CHECK(drain_now(fast) == std::vector<std::string>{"next"});
  CHECK(drain_now(slow) == std::vector<std::string>{"next"});
  sig.emit(type);  // long completed: no effect
  poll(ctx);
  CHECK(r.calls == 1);
}

TEST_CASE("bounded wait: cancelling one of several waiting writes leaves the others in order", "[bounded]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(4, overflow_policy::wait));
  auto s = w.stream();
  w.write("full");
  asio::cancellation_signal sig_b;
  const std::string a = "A", b = "B", c = "C";
  size_result ra, rb, rc;
  w.async_write(asio::buffer(a), ra.handler());
  w.async_write(asio::buffer(b), asio::bind_cancellation_slot(sig_b.slot(), rb.handler()));
  w.async_write(asio::buffer(c), rc.handler());
  poll(ctx);
  CHECK(ra.calls + rb.calls + rc.calls == 0);
  sig_b.emit(asio::cancellation_type::terminal);
  poll_until(ctx, [&] { return rb.calls > 0; }, 10s);
  CHECK(rb.ec == asio::error::operation_aborted);
  CHECK(ra.calls + rc.calls == 0);
  std::vector<std::string> got;
  for (int guard = 0; guard < 10 && got.size() < 3; ++guard) {
    got.push_back(read_one(ctx, s, how::async_next));
    poll(ctx);
  }
  CHECK(got == std::vector<std::string>{"full", "A", "C"});
  CHECK(ra.calls == 1);
  CHECK_FALSE(ra.ec);
  CHECK(rc.calls == 1);
  CHECK_FALSE(rc.ec);
  CHECK(drain_now(s).empty());
}

TEST_CASE("bounded wait: cancelling the first waiting write releases the writes behind it that fit",
          "[bounded]") {
  // Found by the randomised stress run: the cancelled write was the only one that did not
  // fit, and the smaller write queued behind it (FIFO) stayed parked until some reader read.
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(8, overflow_policy::wait));
  auto s = w.stream();
  w.write("full");  // 4 of 8 bytes: a 4-byte write fits, an 8-byte one does not
  asio::cancellation_signal sig;
  const std::string big = "too-big!", small = "fits";
  size_result rbig, rsmall;
  w.async_write(asio::buffer(big), asio::bind_cancellation_slot(sig.slot(), rbig.handler()));
  w.async_write(asio::buffer(small), rsmall.handler());
  poll(ctx);
  REQUIRE(rbig.calls + rsmall.calls == 0);  // the small one waits its turn
  CHECK(s.queued_chunks() == 1);
  sig.emit(asio::cancellation_type::terminal);
  poll_until(ctx, [&] { return rbig.calls > 0 && rsmall.calls > 0; }, 10s);
  CHECK(rbig.ec == asio::error::operation_aborted);
  CHECK_FALSE(rsmall.ec);
  CHECK(rsmall.n == 4);
  CHECK(drain_now(s) == std::vector<std::string>{"full", "fits"});  // nobody read in between
  CHECK(w.bytes_written() == 8);
}

TEST_CASE("bounded wait: an async write raced by a timer with || is aborted and delivers to nobody", "[bounded]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(8, overflow_policy::wait));
  auto fast = w.stream();
  auto slow = w.stream();
  auto outcome = run_coro(ctx, [&]() -> asio::awaitable<std::vector<std::string>> {
    std::vector<std::string> out;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    co_await w.async_write(asio::buffer("12345678", 8), asio::use_awaitable);
    out.push_back(to_string(co_await fast.async_next(asio::use_awaitable)));

    // The slow stream is full: the timer wins, the write is cancelled.
    timer.expires_after(20ms);
    auto r1 = co_await (w.async_write(asio::buffer("lost", 4), asio::use_awaitable) ||
                        timer.async_wait(asio::use_awaitable));
    out.push_back(r1.index() == 1 ? "<timer>" : "<written>");

    // Room made: this time the write wins.
    out.push_back(to_string(co_await slow.async_next(asio::use_awaitable)));
    timer.expires_after(30s);
    auto r2 = co_await (w.async_write(asio::buffer("kept", 4), asio::use_awaitable) ||
                        timer.async_wait(asio::use_awaitable));
    out.push_back(r2.index() == 0 ? "<written " + std::to_string(std::get<0>(r2)) + ">" : "<timer>");
    w.close();
    for (auto* s : {&fast, &slow})
      for (;;) {
        auto b = co_await s->async_next(asio::use_awaitable);
        out.push_back(b.empty() ? "<sentinel>" : to_string(b));
        if (b.empty()) break;
      }
    co_return out;
  }());
  CHECK(outcome == std::vector<std::string>{"12345678", "<timer>", "12345678", "<written 4>", "kept", "<sentinel>",
                                            "kept", "<sentinel>"});
  CHECK(w.bytes_written() == 12);
}

TEST_CASE("bounded wait: a typed async write cancelled while waiting completes with operation_aborted and "
          "delivers to nobody",
          "[bounded]") {
  asio::io_context ctx;
  bytecast::typed_writer<std::string> w(ctx, limited(1, overflow_policy::wait));
  auto fast = w.stream();
  auto slow = w.stream();
  w.write("first");
  CHECK(drain_now(fast) == std::vector<std::string>{"first"});
  asio::cancellation_signal sig;
  int calls = 0;
  bytecast::error_code ec = not_called;
  w.async_write("cancelled", asio::bind_cancellation_slot(sig.slot(), [&](bytecast::error_code e) {
                  ++calls;
                  ec = e;
                }));
  poll(ctx);
  REQUIRE(calls == 0);
  sig.emit(asio::cancellation_type::terminal);
  poll_until(ctx, [&] { return calls > 0; }, 10s);
  CHECK(ec == asio::error::operation_aborted);
  CHECK(drain_now(slow) == std::vector<std::string>{"first"});
  poll(ctx);
  CHECK(drain_now(fast).empty());
  CHECK(drain_now(slow).empty());
  CHECK(w.items_written() == 1);
}

TEST_CASE("bounded wait: a stream dropped while the writer waits on it unblocks the writer", "[bounded]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(8, overflow_policy::wait));
  auto fast = w.stream();
  auto slow = std::make_unique<bytecast::byte_stream>(w.stream());
  w.write("aaaaaaaa");
  CHECK(drain_now(fast) == std::vector<std::string>{"aaaaaaaa"});
  const std::string one = "one", two = "two";
  size_result r1, r2;
  w.async_write(asio::buffer(one), r1.handler());
  w.async_write(asio::buffer(two), r2.handler());
  poll(ctx);
  CHECK(r1.calls + r2.calls == 0);
  CHECK(w.stream_count() == 2);

  slow.reset();  // the only full stream goes away
  poll_until(ctx, [&] { return r1.calls > 0 && r2.calls > 0; }, 10s);
  CHECK_FALSE(r1.ec);
  CHECK(r1.n == 3);
  CHECK_FALSE(r2.ec);
  CHECK(r2.n == 3);
  CHECK(drain_now(fast) == std::vector<std::string>{"one", "two"});
  CHECK(w.stream_count() == 1);
}

TEST_CASE("bounded wait: a stream dropped on another thread while the writer waits on it unblocks the writer",
          "[bounded]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(8, overflow_policy::wait));
  auto fast = w.stream();
  auto slow = std::make_unique<bytecast::byte_stream>(w.stream());
  w.write("aaaaaaaa");
  CHECK(drain_now(fast) == std::vector<std::string>{"aaaaaaaa"});
  const std::string data = "after";
  auto f = w.async_write(asio::buffer(data), asio::use_future);
  std::thread io([&] { ctx.run_for(30s); });  // the waiting write keeps the context running
  std::thread dropper([&] {
    std::this_thread::sleep_for(20ms);
    slow.reset();
  });
  dropper.join();
  const bool ready = f.wait_for(20s) == std::future_status::ready;
  if (!ready) w.close();
  io.join();
  REQUIRE(ready);
  CHECK(f.get() == 5);
  CHECK(drain_now(fast) == std::vector<std::string>{"after"});
}

TEST_CASE("bounded wait: close() while writes wait completes them with broken_pipe and delivers them to nobody",
          "[bounded]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(8, overflow_policy::wait));
  auto fast = w.stream();
  auto slow = w.stream();
  w.write("aaaaaaaa");
  const std::string one = "one", two = "two";
  size_result r1, r2;
  w.async_write(asio::buffer(one), r1.handler());
  w.async_write_some(asio::buffer(two), r2.handler());
  int typed_calls = 0;
  bytecast::error_code typed_ec = not_called;
  bytecast::typed_writer<int> t(ctx, limited(1, overflow_policy::wait));
  auto ts = t.stream();
  t.write(1);
  t.async_write(2, [&](bytecast::error_code e) {
    ++typed_calls;
    typed_ec = e;
  });
  poll(ctx);
  CHECK(r1.calls + r2.calls + typed_calls == 0);

  w.close();
  t.close();
  CHECK(r1.calls + r2.calls + typed_calls == 0);  // posted, not run inside close()
  poll_until(ctx, [&] { return r1.calls > 0 && r2.calls > 0 && typed_calls > 0; }, 10s);
  CHECK(r1.ec == asio::error::broken_pipe);
  CHECK(r1.n == 0);
  CHECK(r2.ec == asio::error::broken_pipe);
  CHECK(r2.n == 0);
  CHECK(typed_ec == asio::error::broken_pipe);
  // Streams get what was written before the close, then the sentinel: never the waiting chunks.
  CHECK(drain_now(fast) == std::vector<std::string>{"aaaaaaaa", "<sentinel>"});
  CHECK(drain_now(slow) == std::vector<std::string>{"aaaaaaaa", "<sentinel>"});
  CHECK(drain_now(ts) == std::vector<std::string>{"1", "<sentinel>"});
  CHECK(w.bytes_written() == 8);
  CHECK(t.items_written() == 1);

  // Later async writes fail at once (not inline) with broken_pipe.
  size_result r3;
  w.async_write(asio::buffer(one), r3.handler());
  CHECK(r3.calls == 0);
  poll_until(ctx, [&] { return r3.calls > 0; }, 10s);
  CHECK(r3.ec == asio::error::broken_pipe);
}

TEST_CASE("bounded wait: destroying the io_context frees a waiting write without running its handler",
          "[bounded]") {
  auto ctx = std::make_unique<asio::io_context>();
  auto w = std::make_unique<bytecast::byte_writer>(*ctx, limited(4, overflow_policy::wait));
  auto s = std::make_unique<bytecast::byte_stream>(w->stream());
  w->write("full");
  auto token = std::make_shared<int>(0);
  bool called = false;
  w->async_write(asio::buffer("waits", 5), [&called, token](bytecast::error_code, std::size_t) { called = true; });
  poll(*ctx);
  CHECK(token.use_count() == 2);  // the handler is held by the waiting write
  ctx.reset();
  CHECK_FALSE(called);
  CHECK(token.use_count() == 1);  // ... and was destroyed with the context
  s.reset();
  w.reset();
  CHECK_FALSE(called);
}

TEST_CASE("bounded wait: the backlog never exceeds the limit plus one chunk while producers outpace a slow reader",
          "[bounded]") {
  constexpr std::size_t limit = 8 * 1024, max_chunk = 1024;
  constexpr int producers = 3, per_producer = 800;
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(limit, overflow_policy::wait));
  auto slow = w.stream();
  std::size_t max_backlog = 0, samples = 0, waited = 0;
  auto sample = [&] {
    max_backlog = std::max(max_backlog, slow.queued_bytes());
    ++samples;
  };
  int done = 0;
  for (int p = 0; p < producers; ++p)
    asio::co_spawn(
        ctx,
        [&, p]() -> asio::awaitable<void> {
          for (int seq = 0; seq < per_producer; ++seq) {
            std::string m = message(p, seq);
            m.resize(8 + (static_cast<std::size_t>(seq) * 2654435761u + static_cast<std::size_t>(p) * 97) %
                             (max_chunk - 8),
                     static_cast<char>('a' + p));
            const bool had_room = !(slow.queued_bytes() != 0 && slow.queued_bytes() + m.size() > limit);
            co_await w.async_write(asio::buffer(m), asio::use_awaitable);
            if (!had_room) ++waited;
            sample();
          }
          if (++done == producers) w.close();
        },
        rethrow{});
  std::vector<std::string> got;
  std::uint64_t received = 0;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer pause(co_await asio::this_coro::executor);
        for (int k = 1;; ++k) {
          auto b = co_await slow.async_next(asio::use_awaitable);
          if (b.empty()) break;
          received += b.size();
          got.push_back(to_string(b).substr(0, 8));
          sample();
          if (k % 8 == 0) {  // a slow reader
            pause.expires_after(1ms);
            co_await pause.async_wait(asio::use_awaitable);
          }
        }
      },
      rethrow{});
  run_all(ctx, 120s);
  CAPTURE(max_backlog, samples, waited);
  CHECK(max_backlog <= limit + max_chunk);
  CHECK(waited > 0);  // the producers did outpace the reader
  check_each_once_in_order(got, producers, per_producer);
  CHECK(received == w.bytes_written());  // lossless
}

// --- drop_oldest -----------------------------------------------------------------------------

TEST_CASE("bounded drop_oldest: the slow stream's next read reports lagged once, then the newest chunks in order",
          "[bounded]") {
  const auto h = GENERATE(how::async_next, how::async_next_chunk, how::try_next, how::async_read_some);
  CAPTURE(name(h));
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(12, overflow_policy::drop_oldest));
  auto fast = w.stream();
  auto slow = w.stream();
  std::vector<std::string> sent;
  for (int i = 0; i < 10; ++i) {
    sent.push_back("m00" + std::to_string(i));  // 4 bytes: the slow stream holds the newest three
    bytecast::error_code ec;
    CHECK(w.write(as_bytes(sent.back()), ec) == 4);  // never fails, never waits
    CHECK_FALSE(ec);
    CHECK(drain_now(fast) == std::vector<std::string>{sent.back()});
    CHECK(slow.queued_bytes() <= 12);
  }
  CHECK(slow.queued_chunks() == 3);
  CHECK(slow.dropped() == 7 * 4);
  CHECK(fast.dropped() == 0);
  CHECK(w.stream_count() == 2);
  CHECK(w.bytes_written() == 40);

  check_reads(ctx, slow, h, {"<lagged>", "m007", "m008", "m009"});
  CHECK(drain_now(slow).empty());  // lagged was reported once only

  // Keeping up again: no lagged. Falling behind again: lagged again, and dropped() adds up.
  w.write("n000");
  CHECK(drain_now(fast) == std::vector<std::string>{"n000"});
  check_reads(ctx, slow, h, {"n000"});
  for (int i = 1; i <= 5; ++i) {
    w.write("n00" + std::to_string(i));
    CHECK(drain_now(fast).size() == 1);
  }
  CHECK(slow.dropped() == 7 * 4 + 2 * 4);
  check_reads(ctx, slow, h, {"<lagged>", "n003", "n004", "n005"});
  CHECK(drain_now(slow).empty());
  CHECK(fast.dropped() == 0);
}

TEST_CASE("bounded drop_oldest: drops after a reported lagged and before the next chunk need no second lagged",
          "[bounded]") {
  // Found by the stress run and the fuzzer: each overflow raised lagged again, so a reader
  // that read lagged while the writer kept overflowing could read nothing but lagged.
  const auto h = GENERATE(how::async_next, how::async_next_chunk, how::try_next, how::async_read_some);
  CAPTURE(name(h));
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(4, overflow_policy::drop_oldest));
  auto s = w.stream();
  w.write("aaaa");
  w.write("bbbb");  // drops aaaa
  check_reads(ctx, s, h, {"<lagged>"});
  w.write("cccc");  // drops bbbb: the same gap, the reader has taken nothing since
  w.write("dddd");  // drops cccc
  check_reads(ctx, s, h, {"dddd"});
  CHECK(s.dropped() == 12);
  // An item was read: the next gap is reported again, once.
  w.write("eeee");
  w.write("ffff");  // drops eeee
  check_reads(ctx, s, h, {"<lagged>", "ffff"});
  CHECK(drain_now(s).empty());
  CHECK(s.dropped() == 16);
}

TEST_CASE("bounded drop_oldest: writes always succeed, asynchronous ones at once", "[bounded]") {
  const auto kind = GENERATE(write_kind::async_write, write_kind::async_write_some, write_kind::asio_async_write);
  CAPTURE(name(kind));
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(8, overflow_policy::drop_oldest));
  auto slow = w.stream();
  std::vector<std::string> data;
  for (int i = 0; i < 20; ++i) data.push_back("c" + std::to_string(100 + i));
  std::vector<size_result> r(data.size());
  for (std::size_t i = 0; i < data.size(); ++i) start_write(kind, w, data[i], r[i].handler());
  poll_until(ctx, [&] { return std::all_of(r.begin(), r.end(), [](auto& x) { return x.calls > 0; }); }, 10s);
  for (std::size_t i = 0; i < data.size(); ++i) {
    CAPTURE(i);
    CHECK_FALSE(r[i].ec);
    CHECK(r[i].n == 4);
  }
  CHECK(drain_now(slow) == std::vector<std::string>{"<lagged>", "c118", "c119"});
  CHECK(slow.dropped() == 18 * 4);
  CHECK(w.bytes_written() == 80);
}

TEST_CASE("bounded drop_oldest: a chunk larger than the limit drops everything queued before it", "[bounded]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(8, overflow_policy::drop_oldest));
  auto s = w.stream();
  w.write("aaaa");
  w.write("bbbb");
  const std::string big(20, 'X');
  w.write(std::string_view(big));
  CHECK(s.dropped() == 8);
  CHECK(s.queued_bytes() == 20);
  CHECK(drain_now(s) == std::vector<std::string>{"<lagged>", big});
  // A chunk that fits after dropping only some: only as many oldest chunks as needed go.
  w.write("1111");
  w.write("2222");
  w.write("333");
  CHECK(s.dropped() == 8 + 4);
  CHECK(drain_now(s) == std::vector<std::string>{"<lagged>", "2222", "333"});
}

TEST_CASE("bounded drop_oldest: after lagged and the kept chunks, a closed writer's sentinel follows", "[bounded]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(4, overflow_policy::drop_oldest));
  auto s = w.stream();
  for (const char* c : {"ab", "cd", "ef", "gh"}) w.write(c);
  w.close();
  CHECK(read_one(ctx, s, how::async_next) == "<lagged>");
  CHECK(read_one(ctx, s, how::async_next) == "ef");
  CHECK(read_one(ctx, s, how::async_next) == "gh");
  CHECK(read_one(ctx, s, how::async_next) == "<sentinel>");
  CHECK(read_one(ctx, s, how::async_next) == "<eof>");
  CHECK(s.dropped() == 4);
}

TEST_CASE("bounded drop_oldest: typed writers count items: the limit and dropped() are in values", "[bounded]") {
  const bool async = GENERATE(false, true);
  CAPTURE(async);
  asio::io_context ctx;
  bytecast::typed_writer<std::string> w(ctx, limited(3, overflow_policy::drop_oldest));
  auto fast = w.stream();
  auto slow = w.stream();
  for (int i = 0; i < 10; ++i) {
    std::string v(static_cast<std::size_t>(100 * (i + 1)), static_cast<char>('0' + i));  // sizes do not count
    w.write(v);
    CHECK(drain_now(fast) == std::vector<std::string>{v});
    CHECK(slow.queued_items() <= 3);
  }
  CHECK(slow.queued_items() == 3);
  CHECK(slow.dropped() == 7);
  CHECK(fast.dropped() == 0);
  if (async) {
    CHECK(read_one(ctx, slow, how::async_next) == "<lagged>");
    CHECK(read_one(ctx, slow, how::async_next) == std::string(800, '7'));
    CHECK(read_one(ctx, slow, how::async_next) == std::string(900, '8'));
    CHECK(read_one(ctx, slow, how::async_next) == std::string(1000, '9'));
    CHECK(drain_now(slow).empty());
  } else {
    CHECK(drain_now(slow) == std::vector<std::string>{"<lagged>", std::string(800, '7'), std::string(900, '8'),
                                                      std::string(1000, '9')});
  }
  // typed async_write never waits under drop_oldest
  int calls = 0;
  bytecast::error_code ec = not_called;
  for (int i = 0; i < 5; ++i) w.async_write("x", [&](bytecast::error_code e) {
    ++calls;
    ec = e;
  });
  poll_until(ctx, [&] { return calls == 5; }, 10s);
  CHECK_FALSE(ec);
  CHECK(slow.dropped() == 7 + 2);
}

TEST_CASE("bounded drop_oldest: memory stays bounded while a producer thread outpaces a slow consumer",
          "[bounded]") {
  constexpr std::size_t limit = 64 * 1024, max_chunk = 4096;
  constexpr std::uint32_t writes = 20000;
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(limit, overflow_policy::drop_oldest));
  auto slow = w.stream();

  std::atomic<bool> start_reading{false};
  std::atomic<std::size_t> reader_max{0};
  struct {
    std::uint64_t received = 0;
    int lagged = 0;
    std::size_t out_of_order = 0, corrupt = 0, chunks = 0;
    std::string problem;
  } log;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer pause(co_await asio::this_coro::executor);
        while (!start_reading.load()) {
          pause.expires_after(1ms);
          co_await pause.async_wait(asio::use_awaitable);
        }
        std::int64_t last = -1;
        for (std::size_t k = 1;; ++k) {
          auto [ec, b] = co_await slow.async_next(as_tuple(asio::use_awaitable));
          if (ec == bytecast::error::lagged) {
            ++log.lagged;
            continue;
          }
          if (ec) {
            log.problem = ec.message();
            break;
          }
          if (b.empty()) break;
          ++log.chunks;
          log.received += b.size();
          std::uint32_t seq = 0;
          std::memcpy(&seq, b.data(), sizeof seq);
          if (static_cast<std::int64_t>(seq) <= last) ++log.out_of_order;
          last = seq;
          for (std::size_t i = sizeof seq; i < b.size(); ++i)
            if (b[i] != static_cast<std::byte>(seq + i)) {
              ++log.corrupt;
              break;
            }
          std::size_t q = slow.queued_bytes();
          if (q > reader_max.load()) reader_max.store(q);
          if (k % 16 == 0) {  // a slow consumer
            pause.expires_after(1ms);
            co_await pause.async_wait(asio::use_awaitable);
          }
        }
      },
      asio::detached);
  std::thread io([&] { ctx.run_for(120s); });

  // The producer is this thread (the heap counter sees its allocations best).
  const std::size_t heap_before = allocated_bytes();
  std::size_t writer_max = 0, heap_growth = 0, write_failures = 0;
  std::vector<std::byte> buf(max_chunk);
  for (std::uint32_t seq = 0; seq < writes; ++seq) {
    const std::size_t size = 4 + (std::size_t{seq} * 2654435761u) % (max_chunk - 4);
    std::memcpy(buf.data(), &seq, sizeof seq);
    for (std::size_t i = sizeof seq; i < size; ++i) buf[i] = static_cast<std::byte>(seq + i);
    bytecast::error_code ec;
    if (w.write(std::span(buf.data(), size), ec) != size || ec) ++write_failures;
    writer_max = std::max(writer_max, slow.queued_bytes());
    if (seq == 100) start_reading = true;  // the reader starts late: it must lag
    if (seq % 256 == 0) {
      const std::size_t now = allocated_bytes();
      heap_growth = std::max(heap_growth, now > heap_before ? now - heap_before : 0);
    }
  }
  w.close();
  io.join();

  CAPTURE(writer_max, reader_max.load(), heap_growth, log.chunks, log.lagged, log.problem);
  CHECK(write_failures == 0);
  CHECK(writer_max <= limit + max_chunk);
  CHECK(reader_max.load() <= limit + max_chunk);
  CHECK(log.problem.empty());
  CHECK(log.lagged >= 1);
  CHECK(log.out_of_order == 0);
  CHECK(log.corrupt == 0);
  // Nothing is lost silently: what the reader got plus what it was told it lost is everything.
  CHECK(log.received + slow.dropped() == w.bytes_written());
  // About 40 MiB went through; the backlog is bounded by 64 KiB.
  CHECK(w.bytes_written() > 30 * MiB);
  CHECK(heap_growth < 16 * MiB);
}

// --- disconnect --------------------------------------------------------------------------------

TEST_CASE("bounded disconnect: the slow stream keeps what it had queued, then reads give overflowed, not the "
          "sentinel",
          "[bounded]") {
  const auto h = GENERATE(how::async_next, how::async_next_chunk, how::try_next, how::async_read_some);
  CAPTURE(name(h));
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(8, overflow_policy::disconnect));
  auto fast = w.stream();
  auto slow = w.stream();
  w.write("aaaa");
  w.write("bbbb");
  CHECK(drain_now(fast) == std::vector<std::string>{"aaaa", "bbbb"});
  CHECK(w.stream_count() == 2);
  bytecast::error_code ec;
  CHECK(w.write(as_bytes("cccc"), ec) == 4);  // the write succeeds for the others
  CHECK_FALSE(ec);
  CHECK(w.stream_count() == 1);  // the slow stream was cut off
  w.write("dddd");
  CHECK(drain_now(fast) == std::vector<std::string>{"cccc", "dddd"});
  CHECK(slow.queued_bytes() == 8);  // it kept what it had, and got nothing more

  check_reads(ctx, slow, h, {"aaaa", "bbbb", "<overflowed>", "<overflowed>"});

  // After the writer closes, the cut-off stream still reports overflowed, never the sentinel.
  w.close();
  CHECK(drain_now(fast) == std::vector<std::string>{"<sentinel>"});
  check_reads(ctx, slow, h, {"<overflowed>"});
}

TEST_CASE("bounded disconnect: a read started before the cut-off still gets the kept chunks and overflowed",
          "[bounded]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(8, overflow_policy::disconnect));
  auto s = w.stream();
  w.write("aaaa");
  w.write("bbbb");
  next_result r;
  s.async_next(r.handler());  // has data: scheduled, not yet run
  w.write("cccc");            // cuts the stream off before the read runs
  poll_until(ctx, [&] { return r.calls > 0; }, 10s);
  CHECK(event_of(r.ec, r.data) == "aaaa");
  CHECK(drain_now(s) == std::vector<std::string>{"bbbb", "<overflowed>"});
}

TEST_CASE("bounded disconnect: writes always succeed for the others, asynchronous ones at once", "[bounded]") {
  const auto kind = GENERATE(write_kind::async_write, write_kind::async_write_some, write_kind::asio_async_write);
  CAPTURE(name(kind));
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(8, overflow_policy::disconnect));
  auto fast = w.stream();
  auto slow = w.stream();
  std::vector<std::string> data{"1111", "2222", "3333", "4444", "5555"};
  std::vector<size_result> r(data.size());
  std::vector<std::string> fast_got;
  for (std::size_t i = 0; i < data.size(); ++i) {
    start_write(kind, w, data[i], r[i].handler());
    for (auto& e : drain_now(fast)) fast_got.push_back(e);  // the fast stream keeps up
  }
  poll_until(ctx, [&] { return std::all_of(r.begin(), r.end(), [](auto& x) { return x.calls > 0; }); }, 10s);
  for (auto& x : r) {
    CHECK_FALSE(x.ec);
    CHECK(x.n == 4);
  }
  CHECK(w.stream_count() == 1);
  CHECK(fast_got == data);
  CHECK(drain_now(slow) == std::vector<std::string>{"1111", "2222", "<overflowed>"});
  CHECK(w.bytes_written() == 20);
}

TEST_CASE("bounded disconnect: several slow streams are cut off independently, fast ones continue", "[bounded]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(6, overflow_policy::disconnect));
  auto fast = w.stream();
  auto slow1 = w.stream();
  auto slow2 = w.stream();
  std::vector<std::string> fast_got;
  auto write = [&](const char* text) {
    w.write(text);
    for (auto& e : drain_now(fast)) fast_got.push_back(e);  // the fast stream keeps up
  };
  write("aaa");
  CHECK(drain_now(slow2) == std::vector<std::string>{"aaa"});  // slow2 is a bit less slow
  write("bbb");
  write("ccc");  // slow1 holds aaa bbb: cut off here; slow2 holds bbb ccc
  CHECK(w.stream_count() == 2);
  write("ddd");  // slow2 is cut off now
  CHECK(w.stream_count() == 1);
  write("eee");
  CHECK(fast_got == std::vector<std::string>{"aaa", "bbb", "ccc", "ddd", "eee"});
  CHECK(drain_now(slow1) == std::vector<std::string>{"aaa", "bbb", "<overflowed>"});
  CHECK(drain_now(slow2) == std::vector<std::string>{"bbb", "ccc", "<overflowed>"});
  CHECK(slow1.dropped() == 0);  // nothing was dropped: the stream was cut off instead
  w.close();
  CHECK(drain_now(fast) == std::vector<std::string>{"<sentinel>"});
}

TEST_CASE("bounded disconnect: typed writers count items", "[bounded]") {
  asio::io_context ctx;
  bytecast::typed_writer<int> w(ctx, limited(2, overflow_policy::disconnect));
  auto fast = w.stream();
  auto slow = w.stream();
  w.write(1);
  w.write(2);
  CHECK(drain_now(fast) == std::vector<std::string>{"1", "2"});
  CHECK(w.stream_count() == 2);
  w.write(3);
  CHECK(w.stream_count() == 1);
  w.write(4);
  CHECK(drain_now(fast) == std::vector<std::string>{"3", "4"});
  CHECK(read_one(ctx, slow, how::async_next) == "1");
  CHECK(read_one(ctx, slow, how::async_next) == "2");
  CHECK(read_one(ctx, slow, how::async_next) == "<overflowed>");
  CHECK(drain_now(slow) == std::vector<std::string>{"<overflowed>"});
  w.close();
  CHECK(read_one(ctx, slow, how::async_next) == "<overflowed>");
  CHECK(read_one(ctx, fast, how::async_next) == "<sentinel>");
}

TEST_CASE("bounded disconnect: the backlog never exceeds the limit plus one chunk before the cut-off",
          "[bounded]") {
  constexpr std::size_t limit = 4096, max_chunk = 512;
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, limited(limit, overflow_policy::disconnect));
  auto slow = w.stream();
  std::size_t max_backlog = 0, cut_at = 0;
  for (std::size_t i = 0; i < 1000; ++i) {
    const std::size_t size = 1 + (i * 2654435761u) % max_chunk;
    w.write(std::string_view(std::string(size, 'x')));
    max_backlog = std::max(max_backlog, slow.queued_bytes());
    if (cut_at == 0 && w.stream_count() == 0) cut_at = i;
  }
  CAPTURE(cut_at, max_backlog);
  CHECK(cut_at > 0);
  CHECK(max_backlog <= limit);  // a cut-off stream keeps only what fit
  const auto rest = drain_now(slow);
  REQUIRE_FALSE(rest.empty());
  CHECK(rest.back() == "<overflowed>");
}
