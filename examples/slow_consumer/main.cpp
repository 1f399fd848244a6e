// slow_consumer: a bounded writer (queue_limit) with one fast and one deliberately slow reader,
// once under each overflow policy: wait (the writer waits for room), drop_oldest (the slow reader
// loses its oldest ticks and is told so) and disconnect (the slow reader is cut off).
#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include "common/asio_backend.hpp" // asio::, standalone or Boost.Asio

#include <chrono>
#include <iostream>
#include <string>
#include <string_view>

using namespace std::chrono_literals;
using asio::use_awaitable;
using bytecast::overflow_policy;

constexpr int tick_count = 10;
constexpr std::size_t tick_size = 7;               // "tick-01"
constexpr std::size_t queue_limit = 4 * tick_size; // each stream may hold 4 ticks
constexpr auto slow_work = 50ms;                   // the slow reader's time per tick

std::string tick(int n) { return (n < 10 ? "tick-0" : "tick-") + std::to_string(n); }

// One whole line per call: lines of different coroutines never mix.
void say(const std::string& line) { std::cout << line << '\n'; }

// The producer is the same for every policy: co_await async_write completes at once, unless the
// writer uses overflow_policy::wait and a stream has no room for the tick. It also reports the
// readers' queues (their thread-safe snapshots), which a real producer would not look at.
asio::awaitable<void> produce(bytecast::byte_writer& writer, const bytecast::byte_stream& fast,
                              const bytecast::byte_stream& slow, overflow_policy policy) {
  int waits = 0;
  for (int n = 1; n <= tick_count; ++n) {
    const std::string t = tick(n);
    // "Full": the queue is not empty and the tick would take it past queue_limit.
    const bool slow_full = slow.queued_bytes() != 0 && slow.queued_bytes() + t.size() > queue_limit;
    if (policy == overflow_policy::wait && slow_full) {
      say("[Writer] " + t + ": the slow reader's queue is full (" + std::to_string(slow.queued_bytes()) + " of " +
          std::to_string(queue_limit) + " bytes), waiting for room...");
      ++waits;
    }
    co_await writer.async_write(asio::buffer(t), use_awaitable);
    say("[Writer] sent " + t + " | fast: " + std::to_string(fast.queued_bytes()) +
        " B queued | slow: " + std::to_string(slow.queued_bytes()) + " B queued, " +
        std::to_string(slow.dropped()) + " B dropped | streams: " + std::to_string(writer.stream_count()));
  }
  writer.close();
  say("[Writer] closed; waited for room " + std::to_string(waits) + " times");
}

// A reader with the documented drain loop: it takes what is queued and waits only when nothing
// is. The slow one spends `work` on every tick before it reads the next.
asio::awaitable<void> consume(std::string who, bytecast::byte_stream& stream, std::chrono::milliseconds work) {
  asio::steady_timer busy(co_await asio::this_coro::executor);
  int received = 0;
  for (;;) {
    bytecast::error_code ec;
    std::span<const std::byte> bytes = stream.try_next(ec);
    if (ec == asio::error::would_block) bytes = co_await stream.async_next(asio::redirect_error(use_awaitable, ec));
    if (ec == bytecast::error::lagged) {
      // Some of the oldest ticks were dropped; the stream goes on with the newest ones.
      say(who + " lagged: " + ec.message() + " (" + std::to_string(stream.dropped()) + " bytes lost so far)");
      continue;
    }
    if (ec == bytecast::error::overflowed) {
      // Cut off: everything it had queued was delivered first; nothing more will come.
      say(who + " disconnected: " + ec.message());
      break;
    }
    if (ec) {
      say(who + " error: " + ec.message());
      break;
    }
    if (bytes.empty()) {
      say(who + " end of stream");
      break;
    }
    ++received;
    say(who + " got " + std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    if (work != 0ms) {
      busy.expires_after(work);
      co_await busy.async_wait(use_awaitable);
    }
  }
  say(who + " received " + std::to_string(received) + " of " + std::to_string(tick_count) + " ticks, lost " +
      std::to_string(stream.dropped()) + " bytes");
}

void run_part(int part, overflow_policy policy, std::string_view policy_name, std::string_view what) {
  std::cout << "--- Part " << part << ": overflow_policy::" << policy_name << " (" << what << ") ---\n";
  asio::io_context ctx;
  bytecast::writer_options options;
  options.queue_limit = queue_limit;
  options.on_overflow = policy;
  bytecast::byte_writer writer(ctx, options);
  auto fast = writer.stream();
  auto slow = writer.stream();
  asio::co_spawn(ctx, consume("[Fast]", fast, 0ms), asio::detached);
  asio::co_spawn(ctx, consume("[Slow]", slow, slow_work), asio::detached);
  asio::co_spawn(ctx, produce(writer, fast, slow, policy), asio::detached);
  ctx.run();
  std::cout << '\n';
}

int main() {
  std::cout << "=== Slow Consumer Example ===\n\n"
            << "queue_limit = " << queue_limit << " bytes per stream (4 ticks of " << tick_size
            << " bytes); the slow reader spends " << slow_work.count() << " ms on every tick.\n\n";

  run_part(1, overflow_policy::wait, "wait", "lossless backpressure");
  run_part(2, overflow_policy::drop_oldest, "drop_oldest", "freshness over completeness");
  run_part(3, overflow_policy::disconnect, "disconnect", "cut off who cannot keep up");

  std::cout << "=== Example Complete ===\n\n"
            << "Key takeaways:\n"
            << "- wait: nothing is lost, the writer goes at the slow reader's pace\n"
            << "- drop_oldest: the writer never waits; the slow reader gets error::lagged once, then the newest ticks\n"
            << "- disconnect: the writer never waits; the slow reader keeps what it had, then gets error::overflowed\n"
            << "- in every mode the fast reader gets every tick, and no queue holds more than queue_limit\n";
}
