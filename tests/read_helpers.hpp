// The unit tests' read helpers: run a context until a completion came, read one item or all a
// stream holds, and tell what a read reported in one word. Part of test_util.hpp (included at its
// end, so it is precompiled with it): a test includes test_util.hpp, never this file alone.
#pragma once

namespace bytecast_test {

// --- running the context ---------------------------------------------------------------------

// Polls `ctx` (handlers ready now) until `done()` holds; FAILS the test after `timeout` instead of hanging.
template <class Pred>
void poll_until(asio::io_context& ctx, Pred done, std::chrono::steady_clock::duration timeout = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    poll(ctx);
    if (done()) return;
    if (std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(1ms);
  }
  FAIL("timed out waiting for a completion");
}

// Runs `ctx` one handler at a time, waiting for timers too, until `done()` holds; FAILS the test
// after `timeout`. For timing tests: a handler runs as soon as it is due, not at the next poll.
template <class Pred>
void run_until(asio::io_context& ctx, Pred done, std::chrono::steady_clock::duration timeout = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) FAIL("timed out waiting for a completion");
    ctx.restart();
    if (ctx.run_one_for(5ms) == 0 && ctx.stopped()) std::this_thread::sleep_for(1ms);
  }
  ctx.restart();
}

// --- callback results, seeded so that an inline completion is visible -------------------------

// A read of a byte stream (async_next or async_next_chunk).
struct next_result {
  int calls = 0;
  bytecast::error_code ec = not_called;
  std::string data = "<not called>";
  bool empty_span = false;
  std::optional<std::string> value;  // `data` as an item: empty for an empty span (the sentinel, an error)

  auto handler() {
    return [this](bytecast::error_code e, std::span<const std::byte> b) { record(e, b); };
  }
  auto chunk_handler() {
    return [this](bytecast::error_code e, bytecast::chunk c) { record(e, c.bytes()); };
  }

 private:
  void record(bytecast::error_code e, std::span<const std::byte> b) {
    ++calls;
    ec = e;
    data = to_string(b);
    empty_span = b.empty();
    value = b.empty() ? std::nullopt : std::optional<std::string>(data);
  }
};

// A read of a typed stream: the value, or empty for the nullopt (the end) or an error.
template <class T>
struct typed_result {
  int calls = 0;
  bytecast::error_code ec = not_called;
  std::optional<T> value;

  auto handler() {
    return [this](bytecast::error_code e, std::optional<T> v) {
      ++calls;
      ec = e;
      value.reset();  // emplace, not assignment: T need not be assignable
      if (v) value.emplace(std::move(*v));
    };
  }
};

// A write, or an async_read_some: completion void(error_code, std::size_t).
struct size_result {
  int calls = 0;
  bytecast::error_code ec = not_called;
  std::size_t n = 987654321;

  auto handler() {
    return [this](bytecast::error_code e, std::size_t k) {
      ++calls;
      ec = e;
      n = k;
    };
  }
};

// --- reading on a single-threaded context, which must then run out of work -------------------

// The next item of a byte stream, read with async_next; FAILS the test if none comes.
template <class Executor>
next_result next_now(asio::io_context& ctx, bytecast::basic_byte_stream<Executor>& s) {
  next_result r;
  s.async_next(r.handler());
  run_all(ctx, 30s);
  REQUIRE(r.calls == 1);
  return r;
}

// The next item of a typed stream, read with async_next; FAILS the test if none comes.
template <class T, class Executor>
typed_result<T> next_now(asio::io_context& ctx, bytecast::basic_typed_stream<T, Executor>& s) {
  typed_result<T> r;
  s.async_next(r.handler());
  run_all(ctx, 30s);
  REQUIRE(r.calls == 1);
  return r;
}

// Every chunk's text up to the sentinel, read with async_next; FAILS on an error or a missing end.
template <class Executor>
std::vector<std::string> drain(asio::io_context& ctx, bytecast::basic_byte_stream<Executor>& s) {
  std::vector<std::string> out;
  for (int guard = 0; guard < 100000; ++guard) {
    auto r = next_now(ctx, s);
    REQUIRE_FALSE(r.ec);
    if (r.empty_span) return out;
    out.push_back(r.data);
  }
  FAIL("no sentinel");
  return out;
}

// Every value up to the nullopt, read with async_next; FAILS on an error or a missing end.
template <class T, class Executor>
std::vector<T> drain(asio::io_context& ctx, bytecast::basic_typed_stream<T, Executor>& s) {
  std::vector<T> out;
  for (int guard = 0; guard < 100000; ++guard) {
    auto r = next_now(ctx, s);
    REQUIRE_FALSE(r.ec);
    if (!r.value) return out;
    out.push_back(std::move(*r.value));
  }
  FAIL("no nullopt");
  return out;
}

// The next chunk of a byte stream, read with async_next_chunk (to look at where its bytes live);
// FAILS the test on an error or when none comes.
inline bytecast::chunk take_chunk(asio::io_context& ctx, bytecast::byte_stream& s,
                                  std::chrono::steady_clock::duration timeout = 30s) {
  bytecast::error_code ec = not_called;
  bytecast::chunk c;
  int calls = 0;
  s.async_next_chunk([&](bytecast::error_code e, bytecast::chunk got) {
    ++calls;
    ec = e;
    c = std::move(got);
  });
  run_all(ctx, timeout);
  REQUIRE(calls == 1);
  REQUIRE_FALSE(ec);
  return c;
}

// --- reads told as events: the item's text, or <sentinel>, <lagged>, <overflowed>, <eof>, ... ---

// What a read reported, as one word: the chunk's text, or <sentinel>, <lagged>, <overflowed>, ...
inline std::string event_of(bytecast::error_code ec, const std::string& data) {
  if (!ec) return data.empty() ? "<sentinel>" : data;
  if (ec == bytecast::error::lagged) return "<lagged>";
  if (ec == bytecast::error::overflowed) return "<overflowed>";
  if (ec == asio::error::eof) return "<eof>";
  if (ec == asio::error::would_block) return "<would_block>";
  if (ec == asio::error::operation_aborted) return "<operation_aborted>";
  return "<error " + std::string(ec.category().name()) + ":" + std::to_string(ec.value()) + " " + ec.message() +
         ">";
}

inline bool is_signal(const std::string& event) { return !event.empty() && event.front() == '<'; }

// A typed value as an event: the string itself, a number in decimal, or <sentinel> for the nullopt.
template <class T>
std::string describe(const std::optional<T>& v) {
  if (!v) return "<sentinel>";
  if constexpr (std::is_same_v<T, std::string>)
    return *v;
  else
    return std::to_string(*v);
}

// Everything a byte stream reports right now, read with try_next: stops (without recording it)
// at would_block, and after recording the sentinel, eof, overflowed or another error (not lagged).
inline std::vector<std::string> drain_now(bytecast::byte_stream& s) {
  std::vector<std::string> out;
  for (int guard = 0; guard < 1'000'000; ++guard) {
    bytecast::error_code ec;
    auto b = s.try_next(ec);
    if (ec == asio::error::would_block) return out;
    out.push_back(event_of(ec, to_string(b)));
    if ((ec && ec != bytecast::error::lagged) || (!ec && b.empty())) return out;
  }
  FAIL("drain_now: the stream never ran dry");
  return out;
}

// The typed twin of drain_now.
template <class T>
std::vector<std::string> drain_now(bytecast::typed_stream<T>& s) {
  std::vector<std::string> out;
  for (int guard = 0; guard < 1'000'000; ++guard) {
    bytecast::error_code ec;
    auto v = s.try_next(ec);
    if (ec == asio::error::would_block) return out;
    out.push_back(ec ? event_of(ec, "") : describe(v));
    if ((ec && ec != bytecast::error::lagged) || (!ec && !v)) return out;
  }
  FAIL("drain_now: the stream never ran dry");
  return out;
}

// How a test reads: a byte stream has all four, a typed stream async_next and try_next.
enum class how { async_next, async_next_chunk, try_next, async_read_some };

inline const char* name(how h) {
  switch (h) {
    case how::async_next: return "async_next";
    case how::async_next_chunk: return "async_next_chunk";
    case how::try_next: return "try_next";
    case how::async_read_some: return "async_read_some";
  }
  return "?";
}

// One read of a byte stream, as an event. An asynchronous one must not complete inline and must
// complete within 10 s (the test FAILS otherwise).
inline std::string read_one(asio::io_context& ctx, bytecast::byte_stream& s, how h) {
  bytecast::error_code ec = not_called;
  std::string data;
  int calls = 0;
  std::array<char, 512> buf{};
  switch (h) {
    case how::try_next: {
      auto b = s.try_next(ec);
      return event_of(ec, to_string(b));
    }
    case how::async_next:
      s.async_next([&](bytecast::error_code e, std::span<const std::byte> b) {
        ++calls;
        ec = e;
        data = to_string(b);
      });
      break;
    case how::async_next_chunk:
      s.async_next_chunk([&](bytecast::error_code e, bytecast::chunk c) {
        ++calls;
        ec = e;
        data = to_string(c.bytes());
      });
      break;
    case how::async_read_some:
      s.async_read_some(asio::buffer(buf), [&](bytecast::error_code e, std::size_t n) {
        ++calls;
        ec = e;
        data.assign(buf.data(), n);
      });
      break;
  }
  CHECK(calls == 0);  // never inline
  poll_until(ctx, [&] { return calls > 0; }, 10s);
  CHECK(calls == 1);
  return event_of(ec, data);
}

// One read of a typed stream (async_next or try_next), as an event; the same rules.
template <class T>
std::string read_one(asio::io_context& ctx, bytecast::typed_stream<T>& s, how h) {
  bytecast::error_code ec = not_called;
  std::optional<T> value;
  if (h == how::try_next) {
    value = s.try_next(ec);
    return ec ? event_of(ec, "") : describe(value);
  }
  if (h != how::async_next) FAIL(name(h) << " is not a read of a typed stream");
  int calls = 0;
  s.async_next([&](bytecast::error_code e, std::optional<T> v) {
    ++calls;
    ec = e;
    value = std::move(v);
  });
  CHECK(calls == 0);  // never inline
  poll_until(ctx, [&] { return calls > 0; }, 10s);
  CHECK(calls == 1);
  if (ec) {
    CHECK_FALSE(value.has_value());
    return event_of(ec, "");
  }
  return describe(value);
}

template <class Stream>
std::vector<std::string> read_n(asio::io_context& ctx, Stream& s, how h, std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(read_one(ctx, s, h));
  return out;
}

// Adjacent chunk texts joined: async_read_some sees bytes, not chunk boundaries.
inline std::vector<std::string> joined(const std::vector<std::string>& events) {
  std::vector<std::string> out;
  bool last_was_data = false;
  for (const auto& e : events) {
    if (!is_signal(e) && last_was_data)
      out.back() += e;
    else
      out.push_back(e);
    last_was_data = !is_signal(e);
  }
  return out;
}

// Reads as many events as `expected` holds (for async_read_some: as many bytes and signals)
// and checks them against it.
inline void check_reads(asio::io_context& ctx, bytecast::byte_stream& s, how h,
                        const std::vector<std::string>& expected) {
  std::vector<std::string> got;
  if (h != how::async_read_some) {
    for (std::size_t i = 0; i < expected.size(); ++i) got.push_back(read_one(ctx, s, h));
    CHECK(got == expected);
    return;
  }
  std::size_t want_bytes = 0, want_signals = 0, have_bytes = 0, have_signals = 0;
  for (const auto& e : expected) (is_signal(e) ? want_signals : want_bytes) += is_signal(e) ? 1 : e.size();
  while ((have_bytes < want_bytes || have_signals < want_signals) && got.size() < 10000) {
    got.push_back(read_one(ctx, s, h));
    if (is_signal(got.back())) {
      ++have_signals;
      if (have_bytes < want_bytes && got.back() != "<lagged>") break;  // the data will never come
    } else {
      have_bytes += got.back().size();
    }
  }
  CHECK(joined(got) == joined(expected));
}

// --- expected sequences ----------------------------------------------------------------------

// make(from), ..., make(to - 1): what reading the values from..to-1 gives, e.g. sequence(0, 3, value).
template <class Make>
auto sequence(int from, int to, Make make) {
  std::vector<decltype(make(from))> out;
  for (int v = from; v < to; ++v) out.push_back(make(v));
  return out;
}

// Expected sequences joined: sequence(0, 3, value) + std::vector{end}.
template <class T>
std::vector<T> operator+(std::vector<T> a, const std::vector<T>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace bytecast_test
