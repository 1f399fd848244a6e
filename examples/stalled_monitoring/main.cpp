// stalled_monitoring: bytecast::stalled_monitor wraps a stream and adds
//  - a read timeout: async_next completes with asio::error::timed_out when the stream produced
//    nothing for a while (the stream stays usable, and the late data is not lost), and
//  - a throttle: deliveries are spaced at least a given time apart.
// Three parts: a timeout after the data stops, a throttled burst, and both together.
#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include "common/asio_backend.hpp" // asio::, standalone or Boost.Asio

#include <chrono>
#include <iostream>
#include <span>
#include <string>
#include <string_view>

using namespace std::chrono_literals;
using asio::use_awaitable;
#if BYTECAST_ASIO_VERSION >= 102400
using asio::as_tuple;
#else
using asio::experimental::as_tuple;
#endif

namespace {

// Milliseconds since the part started, for the printed timeline.
class stopwatch {
 public:
  [[nodiscard]] long long ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

std::string_view text(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

asio::awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(use_awaitable);
}

// --- Part 1: a timeout fires after the data stops ----------------------------------------------

// A sensor sends three readings, then goes quiet without closing. The reader gives up once the
// stream has been silent for 200 ms.
void part1_timeout() {
  std::cout << "--- Part 1: a timeout fires after the data stops ---\n";
  asio::io_context ctx;
  bytecast::byte_writer sensor{ctx};
  auto monitor = bytecast::stalled_monitor{sensor.stream()}.with_timeout(200ms);
  const stopwatch clock;

  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (int i = 1; i <= 3; ++i) {
          sensor.write("reading " + std::to_string(i));
          std::cout << "[Sensor] sent reading " << i << '\n';
          co_await sleep_for(50ms);
        }
        std::cout << "[Sensor] stops sending (but does not close)\n";
      },
      asio::detached);

  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto [ec, bytes] = co_await monitor.async_next(as_tuple(use_awaitable));
          if (ec == asio::error::timed_out) {
            std::cout << "[Reader] +" << clock.ms() << " ms: timed out, no data for 200 ms, giving up\n";
            break;
          }
          if (ec || bytes.empty()) break;
          std::cout << "[Reader] +" << clock.ms() << " ms: '" << text(bytes) << "'\n";
        }
      },
      asio::detached);

  ctx.run();
  std::cout << '\n';
} // ~byte_writer() closes the sensor

// --- Part 2: a throttle spaces out a burst ----------------------------------------------------

// Five chunks are written at once; the monitor delivers them at least 100 ms apart.
void part2_throttle() {
  std::cout << "--- Part 2: a throttle spaces out a burst of chunks ---\n";
  asio::io_context ctx;
  bytecast::byte_writer writer{ctx};
  auto monitor = bytecast::stalled_monitor{writer.stream()}.with_throttle(100ms);

  for (int i = 1; i <= 5; ++i) writer.write("chunk " + std::to_string(i));
  writer.close();
  std::cout << "[Writer] wrote 5 chunks at once, then closed\n";

  const stopwatch clock;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          std::span<const std::byte> bytes = co_await monitor.async_next(use_awaitable);
          if (bytes.empty()) {
            std::cout << "[Reader] end of stream at +" << clock.ms() << " ms\n";
            break;
          }
          std::cout << "[Reader] " << text(bytes) << " at +" << clock.ms() << " ms\n";
        }
      },
      asio::detached);

  ctx.run();
  std::cout << '\n';
}

// --- Part 3: both together -----------------------------------------------------------------

// A burst of three chunks, a pause, one late chunk, then the end. The throttle spaces the burst
// out, the timeout reports the pause, and the late chunk still arrives: nothing is lost.
void part3_combined() {
  std::cout << "--- Part 3: throttle (100 ms) and timeout (300 ms) together ---\n";
  asio::io_context ctx;
  bytecast::byte_writer writer{ctx};
  auto monitor = bytecast::stalled_monitor{writer.stream()}.with_throttle(100ms).with_timeout(300ms);
  const stopwatch clock;

  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (int i = 1; i <= 3; ++i) writer.write("burst " + std::to_string(i));
        std::cout << "[Writer] wrote a burst of 3 chunks\n";
        co_await sleep_for(750ms);
        writer.write("late chunk");
        writer.close();
        std::cout << "[Writer] +" << clock.ms() << " ms: wrote a late chunk after a pause, then closed\n";
      },
      asio::detached);

  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto [ec, bytes] = co_await monitor.async_next(as_tuple(use_awaitable));
          if (ec == asio::error::timed_out) {
            std::cout << "[Reader] +" << clock.ms() << " ms: timed out, no data for 300 ms, still waiting\n";
            continue; // the stream stays usable
          }
          if (ec) {
            std::cout << "[Reader] error: " << ec.message() << '\n';
            break;
          }
          if (bytes.empty()) {
            std::cout << "[Reader] +" << clock.ms() << " ms: end of stream\n";
            break;
          }
          std::cout << "[Reader] +" << clock.ms() << " ms: '" << text(bytes) << "'\n";
        }
      },
      asio::detached);

  ctx.run();
  std::cout << '\n';
}

} // namespace

int main() {
  std::cout << "=== Stalled Monitoring Example ===\n\n";
  part1_timeout();
  part2_throttle();
  part3_combined();
  std::cout << "=== Example Complete ===\n\n"
            << "Key takeaways:\n"
            << "- stalled_monitor{stream}.with_timeout(d): async_next completes with asio::error::timed_out\n"
            << "  when nothing arrives within d of the moment it starts waiting; the stream stays usable\n"
            << "- with_throttle(d): the first item comes at once, each later one at least d after the previous\n"
            << "- Data that arrives after a timeout is returned by the next read: nothing is lost\n"
            << "- It wraps any stream with async_next: byte_stream, typed_stream<T>, or your own\n";
}
