// Tests for API.md section 7 (byte_writer.hpp, byte_stream.hpp, options.hpp): positions and
// from_position, headers, sync points and align_to_sync_points; their interplay with replay,
// drop_oldest, limits and close; typed writers refusing them.
#include "test_util.hpp"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace bytecast_test;
using bytecast::overflow_policy;
using bytecast::stream_options;
using bytecast::sync_point;

namespace {

using events = std::vector<std::string>;

// A stream() call that must throw system_error with invalid_argument.
template <class Make>
void check_invalid(Make make) {
  try {
    (void)make();
    FAIL("no exception");
  } catch (const bytecast::system_error& e) {
    CHECK(e.code() == asio::error::invalid_argument);
  }
}

}  // namespace

TEST_CASE("position(): a live stream starts at bytes_written() and advances by every chunk it returns", "[positions]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  w.write("abc");
  auto s = w.stream();
  CHECK(s.position() == 3);
  w.write("de");
  w.write("fgh");
  CHECK(s.position() == 3); // nothing delivered yet
  bytecast::error_code ec;
  CHECK(to_string(s.try_next(ec)) == "de");
  CHECK(s.position() == 5);
  CHECK(to_string(s.try_next(ec)) == "fgh");
  CHECK(s.position() == 8);
  CHECK(s.position() == w.bytes_written());
}

TEST_CASE("position(): async_read_some advances it by the bytes copied, a chunk at a time", "[positions]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream();
  w.write("hello world");
  std::array<char, 4> buf{};
  std::size_t got = 0;
  s.async_read_some(asio::buffer(buf), [&](bytecast::error_code ec, std::size_t n) {
    CHECK_FALSE(ec);
    got = n;
  });
  run_all(ctx);
  CHECK(got == 4);
  CHECK(s.position() == 4);
}

TEST_CASE("position(): drop_oldest advances it by the dropped bytes", "[positions]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, {.queue_limit = 4, .on_overflow = overflow_policy::drop_oldest});
  auto s = w.stream();
  w.write("aa");
  w.write("bb");
  w.write("cc"); // drops "aa"
  CHECK(s.dropped() == 2);
  CHECK(s.position() == 2); // the next byte it delivers is "bb"'s
  CHECK(drain_now(s) == events{"<lagged>", "bb", "cc"});
  CHECK(s.position() == 6);
}

TEST_CASE("from_position: inside the replay window a resumed stream gets the bytes from p on, no gap, no duplicate",
          "[positions]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, {.replay_limit = 100});
  w.write("0123");
  w.write("4567");
  w.write("89");
  SECTION("p at a chunk boundary") {
    auto s = w.stream({.from_position = 4});
    CHECK(s.position() == 4);
    w.write("ab");
    CHECK(drain_now(s) == events{"4567", "89", "ab"});
    CHECK(s.position() == 12);
    CHECK(s.dropped() == 0);
  }
  SECTION("p inside a chunk: its tail first") {
    auto s = w.stream({.from_position = 6});
    CHECK(s.position() == 6);
    CHECK(drain_now(s) == events{"67", "89"});
    CHECK(s.position() == 10);
  }
  SECTION("p at the oldest retained position and at bytes_written()") {
    auto oldest = w.stream({.from_position = 0});
    CHECK(drain_now(oldest) == events{"0123", "4567", "89"});
    auto live = w.stream({.from_position = 10});
    CHECK(drain_now(live).empty());
    CHECK(live.position() == 10);
  }
  SECTION("replay is ignored when from_position is set") {
    auto s = w.stream({.replay = true, .from_position = 8});
    CHECK(drain_now(s) == events{"89"});
  }
}

TEST_CASE("from_position: older than the window is one lagged gap counted in dropped(), then the oldest retained chunk",
          "[positions]") {
  asio::io_context ctx;
  SECTION("with a replay window") {
    bytecast::byte_writer w(ctx, {.replay_limit = 4});
    w.write("0123");
    w.write("4567"); // the window now holds [4, 8)
    auto s = w.stream({.from_position = 1});
    CHECK(s.dropped() == 3);
    CHECK(s.position() == 4);
    CHECK(drain_now(s) == events{"<lagged>", "4567"});
  }
  SECTION("with nothing retained the window is empty at bytes_written()") {
    bytecast::byte_writer w(ctx);
    w.write("0123");
    auto s = w.stream({.from_position = 1});
    CHECK(s.dropped() == 3);
    CHECK(s.position() == 4);
    w.write("x");
    CHECK(drain_now(s) == events{"<lagged>", "x"});
    auto live = w.stream({.from_position = 5});
    CHECK(live.dropped() == 0);
  }
}

TEST_CASE("from_position: ahead of bytes_written(), or with align_to_sync_points, or on a typed writer, is "
          "invalid_argument and makes no stream",
          "[positions]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, {.replay_limit = 100});
  w.write("0123");
  check_invalid([&] { return w.stream({.from_position = 5}); });
  check_invalid([&] { return w.stream({.from_position = 0, .align_to_sync_points = true}); });
  CHECK(w.stream_count() == 0);
  bytecast::typed_writer<int> t(ctx);
  check_invalid([&] { return t.stream({.from_position = 0}); });
  check_invalid([&] { return t.stream({.align_to_sync_points = true}); });
  CHECK(t.stream_count() == 0);
}

TEST_CASE("from_position: a reader that resumes where it stopped, while a writer thread writes, gets every byte once",
          "[positions][concurrency]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, {.replay_limit = 1 << 20});
  constexpr int writes = 20000;
  std::thread writer([&] {
    for (int i = 0; i < writes; ++i) w.write(std::to_string(i) + ",");
    w.close();
  });
  std::string expected;
  for (int i = 0; i < writes; ++i) expected += std::to_string(i) + ",";
  std::string got;
  std::uint64_t resume_at = 0;
  bool ended = false;
  while (!ended) {
    // A session: a fresh stream from where the last one stopped, a few reads, then gone.
    auto s = w.stream({.from_position = resume_at});
    REQUIRE(s.position() == resume_at);
    for (int reads = 0; reads < 7 && !ended;) {
      bytecast::error_code ec;
      auto b = s.try_next(ec);
      if (ec == asio::error::would_block) {
        std::this_thread::yield();
        continue;
      }
      REQUIRE_FALSE(ec);
      if (b.empty()) ended = true;
      got.append(to_string(b));
      ++reads;
    }
    resume_at = s.position();
    REQUIRE(resume_at == got.size());
  }
  writer.join();
  CHECK(got == expected);
}

TEST_CASE("set_header: every stream made afterwards gets the header first, outside positions, limits and the window",
          "[headers]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, {.queue_limit = 4, .on_overflow = overflow_policy::drop_oldest, .replay_limit = 4});
  auto before = w.stream();
  w.set_header("HEADER");
  CHECK(to_string(w.header().bytes()) == "HEADER");
  CHECK(w.bytes_written() == 0);
  w.write("0123");
  auto after = w.stream();
  CHECK(after.queued_chunks() == 1); // the header, counted while queued
  CHECK(after.queued_bytes() == 6);
  CHECK(after.position() == 4);
  w.write("45");
  w.write("67"); // "45" + "67" fit the limit of 4: the header does not count against it
  CHECK(after.dropped() == 0);
  CHECK(drain_now(after) == events{"HEADER", "45", "67"});
  CHECK(drain_now(before) == events{"<lagged>", "45", "67"}); // no header for existing streams; "0123" did not fit
  auto replayed = w.stream(bytecast::replay);
  CHECK(drain_now(replayed) == events{"HEADER", "45", "67"});
  auto resumed = w.stream({.from_position = 5});
  CHECK(drain_now(resumed) == events{"HEADER", "5", "67"});
  auto lagging = w.stream({.from_position = 0});
  CHECK(drain_now(lagging) == events{"HEADER", "<lagged>", "45", "67"});
  w.clear_header();
  CHECK(w.header().empty());
  auto plain = w.stream(bytecast::replay);
  CHECK(drain_now(plain) == events{"45", "67"});
  w.set_header("H2");
  w.close();
  auto late = w.stream(bytecast::replay);
  CHECK(drain_now(late) == events{"H2", "45", "67", "<sentinel>"});
}

TEST_CASE("set_header: read with async_read_some the header comes first and leaves the position alone", "[headers]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  w.write("xx");
  w.set_header("head");
  auto s = w.stream();
  std::array<char, 3> buf{};
  std::string got;
  s.async_read_some(asio::buffer(buf), [&](bytecast::error_code ec, std::size_t n) {
    CHECK_FALSE(ec);
    got.assign(buf.data(), n);
  });
  run_all(ctx);
  CHECK(got == "hea");
  CHECK(s.position() == 2);
  CHECK(s.queued_bytes() == 1);
}

TEST_CASE("align_to_sync_points: a live stream skips what comes before the first sync point, counted as dropped",
          "[sync]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream({.align_to_sync_points = true});
  auto plain = w.stream();
  w.write("p1");
  w.write("p2");
  CHECK(s.queued_chunks() == 0); // skipped chunks are never queued
  w.write("K1", sync_point);
  w.write("p3");
  CHECK(drain_now(s) == events{"K1", "p3"});
  CHECK(s.dropped() == 4);
  CHECK(s.position() == 8);
  CHECK(drain_now(plain) == events{"p1", "p2", "K1", "p3"});
}

TEST_CASE("align_to_sync_points with replay starts at the newest retained sync point, or live without one", "[sync]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, {.replay_limit = 100});
  w.write("a");
  w.write("K1", sync_point);
  w.write("b");
  w.write("K2", sync_point);
  w.write("c");
  auto s = w.stream({.replay = true, .align_to_sync_points = true});
  CHECK(s.position() == 4);
  CHECK(drain_now(s) == events{"K2", "c"});

  bytecast::byte_writer none(ctx, {.replay_limit = 100});
  none.write("a");
  auto t = none.stream({.replay = true, .align_to_sync_points = true});
  none.write("b");
  none.write("K", sync_point);
  CHECK(drain_now(t) == events{"K"});
  CHECK(t.dropped() == 1); // "b"; "a" was before the stream started
}

TEST_CASE("align_to_sync_points under drop_oldest: after a gap the read after lagged returns a sync point", "[sync]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, {.queue_limit = 6, .on_overflow = overflow_policy::drop_oldest});
  auto s = w.stream({.align_to_sync_points = true});
  w.write("K1", sync_point);
  w.write("a1");
  w.write("a2");
  SECTION("a sync point queued after the gap") {
    w.write("K2", sync_point); // drops K1; a1 and a2 go too, up to K2
    w.write("b1");
    CHECK(drain_now(s) == events{"<lagged>", "K2", "b1"});
    CHECK(s.dropped() == 6);
  }
  SECTION("no sync point queued: it skips until the next one written") {
    w.write("a3"); // drops K1, then a1 and a2 (no sync point left), and a3 itself
    CHECK(s.queued_chunks() == 0);
    w.write("a4");
    w.write("K2", sync_point);
    CHECK(drain_now(s) == events{"<lagged>", "K2"});
    CHECK(s.dropped() == 10);
    CHECK(s.position() == 12);
  }
}

TEST_CASE("sync_point: async_write with the tag marks the chunk too; unaligned streams see every chunk", "[sync]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  auto s = w.stream({.align_to_sync_points = true});
  auto plain = w.stream();
  std::string text = "K";
  std::size_t written = 0;
  w.async_write(asio::buffer(std::string_view("x")), [&](bytecast::error_code, std::size_t) {});
  w.async_write(asio::buffer(text), sync_point, [&](bytecast::error_code ec, std::size_t n) {
    CHECK_FALSE(ec);
    written = n;
  });
  run_all(ctx);
  CHECK(written == 1);
  CHECK(drain_now(s) == events{"K"});
  CHECK(drain_now(plain) == events{"x", "K"});
}

TEST_CASE("set_header races with writes and stream() on other threads: every stream gets one whole header first, "
          "then contiguous bytes from its start position",
          "[headers][concurrency]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx);
  const std::string h1(1000, 'a'), h2(3000, 'b');
  w.set_header(h1); // every stream below is made after a set_header
  std::atomic<bool> stop{false};
  std::thread headers([&] {
    for (int i = 0; !stop; ++i) w.set_header(i % 2 ? h1 : h2);
  });
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) w.write("x");
  });
  for (int i = 0; i < 2000; ++i) {
    auto s = w.stream();
    const std::uint64_t start = s.position();
    bytecast::error_code ec;
    const std::string first = to_string(s.try_next(ec)); // queued at creation: no waiting
    CHECK_FALSE(ec);
    CHECK((first == h1 || first == h2));
    // What follows is the writer's "x"s from `start` on: position() counts them, not the header.
    std::uint64_t got = 0;
    for (int reads = 0; reads < 3; ++reads) {
      auto b = s.try_next(ec);
      if (ec == asio::error::would_block) break;
      CHECK_FALSE(ec);
      CHECK(to_string(b) == "x");
      ++got;
    }
    CHECK(s.position() == start + got);
  }
  stop = true;
  headers.join();
  writer.join();
}

TEST_CASE("align_to_sync_points under concurrent writes and drop_oldest: every read after a gap, and the first read, "
          "is a sync point, and positions stay contiguous between gaps",
          "[sync][concurrency]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, {.queue_limit = 64, .on_overflow = overflow_policy::drop_oldest});
  auto s = w.stream({.align_to_sync_points = true});
  constexpr int writes = 200000;
  std::thread writer([&] {
    // Groups of 8 chunks of 4 bytes; each group starts with a sync point "K..." (its number).
    for (int i = 0; i < writes; ++i) {
      char text[5];
      std::snprintf(text, sizeof text, "%c%03d", i % 8 == 0 ? 'K' : 'p', i % 1000);
      if (i % 8 == 0) w.write(std::string_view(text, 4), sync_point);
      else w.write(std::string_view(text, 4));
    }
    w.close();
  });
  bool expect_sync = true; // the first read, and the read after every lagged
  std::uint64_t reads = 0, gaps = 0;
  for (;;) {
    bytecast::error_code ec;
    const std::uint64_t before = s.position();
    auto b = s.try_next(ec);
    if (ec == asio::error::would_block) continue;
    if (ec == bytecast::error::lagged) {
      expect_sync = true;
      ++gaps;
      continue;
    }
    REQUIRE_FALSE(ec);
    if (b.empty()) break;
    const std::string text = to_string(b);
    REQUIRE(text.size() == 4);
    if (expect_sync) REQUIRE(text[0] == 'K');
    expect_sync = false;
    REQUIRE(s.position() >= before + 4); // a gap may be skipped between the two calls
    ++reads;
  }
  writer.join();
  CHECK(reads > 0);
  CHECK(s.position() == w.bytes_written());
  CHECK(reads * 4 + s.dropped() == w.bytes_written());
  INFO("gaps: " << gaps);
}

TEST_CASE("position(): a stream cut off by disconnect ends after what it holds, not after the write that cut it off",
          "[positions]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, {.queue_limit = 4, .on_overflow = overflow_policy::disconnect});
  auto s = w.stream();
  w.write("abc");
  w.write("defg"); // does not fit: cut off
  CHECK(s.position() == 0);
  CHECK(drain_now(s) == events{"abc", "<overflowed>"});
  CHECK(s.position() == 3);
}

TEST_CASE("position(): behind a partly read chunk a drop_oldest gap does not move it until the chunk is read",
          "[positions]") {
  asio::io_context ctx;
  bytecast::byte_writer w(ctx, {.queue_limit = 4, .on_overflow = overflow_policy::drop_oldest});
  auto s = w.stream();
  w.write("abcd");
  std::array<char, 1> buf{};
  s.async_read_some(asio::buffer(buf), [](bytecast::error_code, std::size_t) {});
  run_all(ctx);
  CHECK(s.position() == 1);
  w.write("efgh");
  w.write("ijkl"); // drops "efgh": the gap is behind "bcd"
  CHECK(s.position() == 1);
  CHECK(drain_now(s) == events{"bcd", "<lagged>", "ijkl"});
  CHECK(s.position() == 12);
}
