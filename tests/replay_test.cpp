// Tests for replay for late joiners (API.md section 5: writer_options::replay_limit and
// writer.stream(bytecast::replay), options.hpp): what is retained, in which order it is
// replayed, that it is shared rather than copied, and that it survives close().
#include "test_util.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <type_traits>

using namespace bytecast_test;
using bytecast::overflow_policy;

namespace {

bytecast::writer_options with_replay(std::size_t replay_limit, std::size_t queue_limit = 0,
                                     overflow_policy policy = overflow_policy::wait) {
  bytecast::writer_options o;
  o.replay_limit = replay_limit;
  o.queue_limit = queue_limit;
  o.on_overflow = policy;
  return o;
}

template <class T>
void accept(T);

// True when `T t = {};` works, i.e. when the default constructor is not explicit.
template <class T>
concept list_initializable_from_braces = requires { accept<T>({}); };

}  // namespace

TEST_CASE("replay: the replay tag is a distinct, explicitly constructed type", "[replay]") {
  CHECK(std::is_same_v<std::remove_cv_t<decltype(bytecast::replay)>, bytecast::replay_t>);
  CHECK(std::is_empty_v<bytecast::replay_t>);
  CHECK(std::is_same_v<decltype(std::declval<bytecast::byte_writer&>().stream(bytecast::replay)),
                       bytecast::byte_stream>);
  CHECK(std::is_same_v<decltype(std::declval<bytecast::typed_writer<int>&>().stream(bytecast::replay)),
                       bytecast::typed_stream<int>>);
  // `stream({})` must not quietly pick the replay overload: replay_t has an explicit default constructor.
  CHECK_FALSE(list_initializable_from_braces<bytecast::replay_t>);
  CHECK(std::is_default_constructible_v<bytecast::replay_t>);
}

TEST_CASE("replay: a replay stream first gets the retained chunks, oldest first, then the live ones",
          "[replay]") {
  const auto h = GENERATE(how::async_next, how::async_next_chunk, how::try_next);
  CAPTURE(name(h));
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, with_replay(12));
  for (const char* c : {"r001", "r002", "r003", "r004"}) w.write(c);  // 4 bytes each: the newest 3 fit
  auto late = w.stream(bytecast::replay);
  CHECK(late.queued_chunks() == 3);
  CHECK(late.queued_bytes() == 12);
  CHECK(w.stream_count() == 1);
  w.write("live");
  CHECK(read_n(ctx, late, h, 4) == std::vector<std::string>{"r002", "r003", "r004", "live"});
  CHECK(drain_now(late).empty());
  w.close();
  CHECK(read_n(ctx, late, h, 2) == std::vector<std::string>{"<sentinel>", "<eof>"});
}

TEST_CASE("replay: stream() stays live-only on a writer with replay", "[replay]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, with_replay(1024));
  w.write("old 1");
  w.write("old 2");
  auto live = w.stream();
  auto late = w.stream(bytecast::replay);
  CHECK(live.queued_chunks() == 0);
  w.write("new");
  CHECK(drain_now(live) == std::vector<std::string>{"new"});
  CHECK(drain_now(late) == std::vector<std::string>{"old 1", "old 2", "new"});
}

TEST_CASE("replay: every replay stream gets its own replay of what is retained when it is made", "[replay]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, with_replay(6));
  w.write("aa");
  auto first = w.stream(bytecast::replay);
  w.write("bb");
  w.write("cc");
  auto second = w.stream(bytecast::replay);
  auto third = w.stream(bytecast::replay);
  w.write("dd");
  auto fourth = w.stream(bytecast::replay);
  CHECK(drain_now(first) == std::vector<std::string>{"aa", "bb", "cc", "dd"});
  CHECK(drain_now(second) == std::vector<std::string>{"aa", "bb", "cc", "dd"});
  CHECK(drain_now(third) == std::vector<std::string>{"aa", "bb", "cc", "dd"});
  CHECK(drain_now(fourth) == std::vector<std::string>{"bb", "cc", "dd"});
  CHECK(w.stream_count() == 4);
}

TEST_CASE("replay: only whole chunks are retained: the most recent ones that fit in replay_limit", "[replay]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, with_replay(10));
  auto replayed = [&] {
    auto s = w.stream(bytecast::replay);
    return drain_now(s);
  };
  CHECK(replayed().empty());  // nothing written yet
  w.write("aaaaaa");          // 6
  CHECK(replayed() == std::vector<std::string>{"aaaaaa"});
  w.write("bbbbb");  // 6 + 5 > 10: the older chunk goes whole, never in part
  CHECK(replayed() == std::vector<std::string>{"bbbbb"});
  w.write("cc");
  CHECK(replayed() == std::vector<std::string>{"bbbbb", "cc"});
  w.write("ddd");  // 5 + 2 + 3 == 10: exactly the limit fits
  CHECK(replayed() == std::vector<std::string>{"bbbbb", "cc", "ddd"});
  w.write("e");
  CHECK(replayed() == std::vector<std::string>{"cc", "ddd", "e"});
}

TEST_CASE("replay: a chunk larger than replay_limit is not retained and pushes every older chunk out",
          "[replay]") {
  // API.md: the writer retains "its most recent whole chunks, as many as fit": the most recent
  // chunk does not fit, so none does: older chunks are not kept behind a chunk that is missing.
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, with_replay(8));
  w.write("aaaa");
  w.write("bbbb");
  CHECK(w.stream(bytecast::replay).queued_chunks() == 2);
  const std::string big(20, 'X');
  w.write(std::string_view(big));
  auto after_big = w.stream(bytecast::replay);
  CHECK(after_big.queued_chunks() == 0);
  CHECK(after_big.queued_bytes() == 0);
  // Chunks that fit are retained again afterwards.
  w.write("cc");
  auto after_small = w.stream(bytecast::replay);
  CHECK(drain_now(after_small) == std::vector<std::string>{"cc"});
  CHECK(drain_now(after_big) == std::vector<std::string>{"cc"});
  // A chunk of exactly replay_limit bytes fits.
  w.write("12345678");
  auto exact = w.stream(bytecast::replay);
  CHECK(drain_now(exact) == std::vector<std::string>{"12345678"});
}

TEST_CASE("replay: replay_limit 0 retains nothing: stream(replay) is live-only", "[replay]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, with_replay(0));
  w.write("not retained");
  auto late = w.stream(bytecast::replay);
  CHECK(late.queued_chunks() == 0);
  w.write("live");
  CHECK(drain_now(late) == std::vector<std::string>{"live"});

  bytecast::byte_writer plain(ctx);  // the default options: no replay either
  plain.write("not retained");
  auto s = plain.stream(bytecast::replay);
  CHECK(s.queued_chunks() == 0);
}

TEST_CASE("replay: retained chunks are shared with the live streams, not copied", "[replay]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, with_replay(4096));
  auto live = w.stream();
  w.write("shared bytes");
  auto late1 = w.stream(bytecast::replay);
  auto late2 = w.stream(bytecast::replay);
  const auto a = take_chunk(ctx, live, 10s);
  const auto b = take_chunk(ctx, late1, 10s);
  const auto c = take_chunk(ctx, late2, 10s);
  CHECK(to_string(a.bytes()) == "shared bytes");
  CHECK(to_string(b.bytes()) == "shared bytes");
  CHECK(b.data() == a.data());  // the same bytes, not a copy
  CHECK(c.data() == a.data());
  // The span of async_next points at the same bytes too.
  auto late3 = w.stream(bytecast::replay);
  const std::byte* seen = nullptr;
  late3.async_next([&](bytecast::error_code, std::span<const std::byte> s) { seen = s.data(); });
  poll_until(ctx, [&] { return seen != nullptr; }, 10s);
  CHECK(seen == a.data());
}

TEST_CASE("replay: a large retained chunk replayed to many late joiners is stored once", "[replay]") {
  constexpr std::size_t size = 4 * MiB;
  constexpr int joiners = 16;
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, with_replay(size));
  w.write(std::span<const std::byte>(make_bytes(size)));
  const std::size_t before = allocated_bytes();
  std::deque<bytecast::byte_stream> late;
  for (int i = 0; i < joiners; ++i) late.push_back(w.stream(bytecast::replay));
  const std::size_t after = allocated_bytes();
  const std::size_t growth = after > before ? after - before : 0;
  CAPTURE(growth);
  CHECK(growth < size);  // one copy per joiner would be 64 MiB
  for (auto& s : late) CHECK(s.queued_bytes() == size);
}

TEST_CASE("replay: retained chunks are released as newer ones push them out", "[replay]") {
  constexpr std::size_t size = 1 * MiB;
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, with_replay(4 * size));
  const auto payload = make_bytes(size);
  const std::size_t before = allocated_bytes();
  std::size_t growth = 0;
  for (int i = 0; i < 32; ++i) {
    w.write(std::span<const std::byte>(payload));
    const std::size_t now = allocated_bytes();
    growth = std::max(growth, now > before ? now - before : 0);
  }
  CAPTURE(growth);
  CHECK(growth < 8 * size);  // four retained chunks and some slack; keeping all would be 32 MiB
  CHECK(w.stream(bytecast::replay).queued_chunks() == 4);
}

TEST_CASE("replay: after close the replay stays available, then the sentinel, then eof", "[replay]") {
  const auto h = GENERATE(how::async_next, how::async_next_chunk, how::try_next);
  CAPTURE(name(h));
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, with_replay(100));
  w.write("header");
  w.write("frame 1");
  w.close();
  CHECK_FALSE(w.is_open());
  auto late = w.stream(bytecast::replay);
  CHECK(read_n(ctx, late, h, 4) == std::vector<std::string>{"header", "frame 1", "<sentinel>", "<eof>"});
  // Again for a second late joiner: the replay is not used up.
  auto later = w.stream(bytecast::replay);
  CHECK(read_n(ctx, later, h, 3) == std::vector<std::string>{"header", "frame 1", "<sentinel>"});
  // A live-only stream of a closed writer yields the sentinel at once.
  auto live = w.stream();
  CHECK(read_n(ctx, live, h, 2) == std::vector<std::string>{"<sentinel>", "<eof>"});
  CHECK(w.stream_count() == 0);
}

TEST_CASE("replay: a destroyed writer's streams made before still get the replay and the sentinel", "[replay]") {
  asio::io_context ctx;
  std::optional<bytecast::byte_writer> w(std::in_place, ctx, with_replay(100));
  w->write("kept");
  auto late = w->stream(bytecast::replay);
  w.reset();
  CHECK(drain_now(late) == std::vector<std::string>{"kept", "<sentinel>"});
}

TEST_CASE("replay: replayed and live chunks read through async_read_some as one byte sequence", "[replay]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, with_replay(10));
  for (const char* c : {"0123", "4567", "89ab"}) w.write(c);
  auto late = w.stream(bytecast::replay);
  w.write("cdef");
  w.close();
  std::string all;
  bytecast::error_code ec = not_called;
  asio::async_read(late, asio::dynamic_buffer(all), [&](bytecast::error_code e, std::size_t) { ec = e; });
  CHECK(ec == not_called);
  run_all(ctx, 30s);
  CHECK(ec == asio::error::eof);
  CHECK(all == "456789abcdef");
}

TEST_CASE("replay: typed writers retain the most recent values, counted in items", "[replay]") {
  asio::io_context ctx;
  bytecast::typed_writer<std::string> w(ctx, with_replay(3));
  for (int i = 1; i <= 5; ++i) w.write(std::string(static_cast<std::size_t>(i * 100), static_cast<char>('0' + i)));
  auto live = w.stream();
  auto late = w.stream(bytecast::replay);
  CHECK(late.queued_items() == 3);  // sizes do not count: items do
  w.write("6");
  CHECK(drain_now(live) == std::vector<std::string>{"6"});
  CHECK(drain_now(late) ==
        std::vector<std::string>{std::string(300, '3'), std::string(400, '4'), std::string(500, '5'), "6"});
  // Each replay stream owns its values: reading one does not change another's.
  auto a = w.stream(bytecast::replay);
  auto b = w.stream(bytecast::replay);
  bytecast::error_code ec;
  auto va = a.try_next(ec);
  REQUIRE(va);
  va->assign("changed");
  CHECK(drain_now(b) == std::vector<std::string>{std::string(400, '4'), std::string(500, '5'), "6"});
  // After close: the replay, then std::nullopt.
  w.close();
  auto after = w.stream(bytecast::replay);
  CHECK(drain_now(after) == std::vector<std::string>{std::string(400, '4'), std::string(500, '5'), "6", "<sentinel>"});
}

TEST_CASE("replay: a typed replay stream works with async_next and is not completed inline", "[replay]") {
  asio::io_context ctx;
  bytecast::typed_writer<int> w(ctx, with_replay(2));
  for (int i = 1; i <= 4; ++i) w.write(i);
  auto late = w.stream(bytecast::replay);
  std::vector<std::string> got;
  for (int k = 0; k < 3; ++k) {
    int calls = 0;
    late.async_next([&](bytecast::error_code ec, std::optional<int> v) {
      ++calls;
      got.push_back(ec ? event_of(ec, "") : v ? std::to_string(*v) : "<sentinel>");
    });
    CHECK(calls == 0);
    if (k == 2) w.close();
    poll_until(ctx, [&] { return calls > 0; }, 10s);
  }
  CHECK(got == std::vector<std::string>{"3", "4", "<sentinel>"});
}

TEST_CASE("replay: a replay stream's retained backlog counts against queue_limit like any backlog", "[replay]") {
  // With the wait policy, a late joiner that has not read its replay yet is full.
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, with_replay(8, 8, overflow_policy::wait));
  w.write("aaaa");
  w.write("bbbb");  // no stream yet: retained only
  auto late = w.stream(bytecast::replay);
  CHECK(late.queued_bytes() == 8);
  bytecast::error_code ec;
  CHECK(w.write(as_bytes("cccc"), ec) == 0);
  CHECK(ec == asio::error::would_block);
  size_result r;
  w.async_write(asio::buffer("cccc", 4), r.handler());
  poll(ctx);
  CHECK(r.calls == 0);
  CHECK(read_one(ctx, late, how::try_next) == "aaaa");
  poll_until(ctx, [&] { return r.calls > 0; }, 10s);
  CHECK_FALSE(r.ec);
  CHECK(drain_now(late) == std::vector<std::string>{"bbbb", "cccc"});
  // Under drop_oldest the same late joiner would lag instead.
  bytecast::byte_writer d(ctx, with_replay(8, 8, overflow_policy::drop_oldest));
  d.write("aaaa");
  d.write("bbbb");
  auto late_d = d.stream(bytecast::replay);
  d.write("cccc");
  CHECK(drain_now(late_d) == std::vector<std::string>{"<lagged>", "bbbb", "cccc"});
  CHECK(late_d.dropped() == 4);
}

TEST_CASE("replay: replay streams made while a thread writes see no gap and no duplicate between replay and live",
          "[replay]") {
  constexpr std::uint32_t writes = 4000;
  constexpr int joiners = 60;
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, with_replay(16 * sizeof(std::uint32_t)));  // the newest 16 chunks
  std::atomic<bool> go{false};
  std::thread producer([&] {
    while (!go.load()) std::this_thread::yield();
    for (std::uint32_t seq = 0; seq < writes; ++seq) {
      w.write(std::span<const std::byte>(reinterpret_cast<const std::byte*>(&seq), sizeof seq));
      if (seq % 32 == 0) std::this_thread::yield();
    }
    w.close();
  });
  std::deque<bytecast::byte_stream> late;
  go = true;
  for (int i = 0; i < joiners; ++i) {
    late.push_back(w.stream(bytecast::replay));
    std::this_thread::sleep_for(100us);
  }
  producer.join();
  late.push_back(w.stream(bytecast::replay));  // after close: the last 16, then the sentinel
  std::size_t gaps = 0, bad_end = 0, replayed_some = 0;
  for (auto& s : late) {
    std::int64_t prev = -1;
    bool sentinel = false;
    for (int guard = 0; guard <= static_cast<int>(writes) + 2; ++guard) {
      bytecast::error_code ec;
      auto b = s.try_next(ec);
      if (ec || b.empty()) {
        sentinel = !ec;
        break;
      }
      std::uint32_t seq = 0;
      std::memcpy(&seq, b.data(), sizeof seq);
      if (prev >= 0 && seq != prev + 1) ++gaps;
      if (prev < 0 && seq > 0) ++replayed_some;
      prev = seq;
    }
    if (!sentinel || prev != static_cast<std::int64_t>(writes) - 1) ++bad_end;
  }
  CAPTURE(replayed_some);
  CHECK(gaps == 0);
  CHECK(bad_end == 0);
}
