// late_join: a live feed that starts with a header (think of a video stream's codec header),
// and viewers that join late through writer.stream(bytecast::replay).
//
// Replay keeps the writer's MOST RECENT chunks, so a header written only once at the start would
// soon be pushed out of the replay window. The writer therefore repeats the header every
// `header_every` frames (as video streams repeat their key frames), and replay_limit is sized to
// hold one header plus that many frames: whenever a viewer joins, its replay holds a header.
#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include "common/asio_backend.hpp" // asio::, standalone or Boost.Asio

#include <chrono>
#include <iostream>
#include <string>
#include <string_view>

using namespace std::chrono_literals;
using asio::use_awaitable;

constexpr std::string_view header = "HDR h264 1280x720"; // 17 bytes
constexpr std::size_t frame_size = 8;                    // "frame 01"
constexpr int frame_count = 12;
constexpr int header_every = 4;
// One header and the frames that follow it, up to the next header: the replay always holds a header.
constexpr std::size_t replay_limit = header.size() + header_every * frame_size;

std::string frame(int n) { return (n < 10 ? "frame 0" : "frame ") + std::to_string(n); }

void say(const std::string& line) { std::cout << line << '\n'; }

// A viewer decodes frames only after it has seen a header; it skips frames that come before.
// The first `replayed` chunks of its stream are the replay, the rest is live.
asio::awaitable<void> view(std::string name, bytecast::byte_stream stream, std::size_t replayed) {
  const std::string who = "[Viewer " + name + "] ";
  bool have_header = false;
  int shown = 0;
  for (std::size_t i = 0;; ++i) {
    std::span<const std::byte> bytes = co_await stream.next();
    if (bytes.empty()) break; // the writer closed
    const std::string_view chunk(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    const std::string source = i < replayed ? " (replayed)" : " (live)";
    if (chunk == header) {
      say(who + (have_header ? "header again" : "header: " + std::string(chunk) + ", decoding starts") + source);
      have_header = true;
    } else if (!have_header) {
      say(who + "skips " + std::string(chunk) + ": no header yet" + source);
    } else {
      ++shown;
      say(who + "shows " + std::string(chunk) + source);
    }
  }
  say(who + "end of stream: showed " + std::to_string(shown) + " frames");
}

// Starts a viewer now; with `replay` it first gets the chunks the writer retained.
void join(bytecast::byte_writer& writer, std::string name, bool replay) {
  auto stream = replay ? writer.stream(bytecast::replay) : writer.stream();
  const std::size_t replayed = stream.queued_chunks(); // nothing else reached it yet
  say("[Writer] viewer " + name + " joins " +
      (replay ? "with replay: " + std::to_string(replayed) + " chunks (" + std::to_string(stream.queued_bytes()) +
                    " bytes) retained"
              : std::string("live only")));
  asio::co_spawn(writer.get_executor(), view(std::move(name), std::move(stream), replayed), asio::detached);
}

asio::awaitable<void> broadcast(bytecast::byte_writer& writer) {
  asio::steady_timer pace(co_await asio::this_coro::executor);
  for (int n = 1; n <= frame_count; ++n) {
    if ((n - 1) % header_every == 0) {
      writer.write(header);
      say("[Writer] header");
    }
    writer.write(frame(n));
    say("[Writer] " + frame(n));
    if (n == 2) join(writer, "B", true);
    if (n == 7) {
      join(writer, "C", true);
      join(writer, "D", false);
    }
    pace.expires_after(10ms); // a live feed: one frame every 10 ms
    co_await pace.async_wait(use_awaitable);
  }
  writer.close();
  say("[Writer] closed");
  // The replay outlives close(): a viewer joining now gets the retained chunks, then the end.
  join(writer, "E", true);
}

int main() {
  std::cout << "=== Late Join Example ===\n\n"
            << "replay_limit = " << replay_limit << " bytes: one " << header.size() << "-byte header and "
            << header_every << " frames of " << frame_size << " bytes; the header is repeated every "
            << header_every << " frames.\n\n";

  asio::io_context ctx;
  bytecast::writer_options options;
  options.replay_limit = replay_limit;
  bytecast::byte_writer writer(ctx, options);
  join(writer, "A", false); // from the very start: sees everything live
  asio::co_spawn(ctx, broadcast(writer), asio::detached);
  ctx.run();

  std::cout << "\n=== Example Complete ===\n\n"
            << "Key takeaways:\n"
            << "- stream(bytecast::replay) starts with the retained chunks, oldest first, then goes live\n"
            << "- replay keeps the most RECENT whole chunks that fit in replay_limit, not the first ones\n"
            << "- so a header must be repeated, and replay_limit must hold a header and the frames between two headers\n"
            << "- without replay (viewer D) a late viewer waits for the next header\n"
            << "- after close() the replay is still there: viewer E gets it, then the end of the stream\n";
}
