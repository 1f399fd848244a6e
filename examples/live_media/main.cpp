// live_media: live video from stdin (fragmented MP4, e.g. from ffmpeg) to every HTTP client of
// `GET /live.mp4`, which real players can join at any time (API.md section 7):
//   - ftyp + moov, the initialisation segment, become the writer's header: every viewer gets it first;
//   - each moof + mdat pair (a movie fragment) is one chunk, written as a sync point when its first
//     sample is a key frame;
//   - viewers are drop_oldest streams with replay, aligned to sync points: a newcomer starts at the
//     newest retained key frame, and a viewer that falls behind skips to the next key frame;
//   - `GET /live.mp4?from=POSITION` resumes at a position of the feed (no header, no alignment);
//     every /live.mp4 response says in `X-Position` where its media bytes start.
//   - `GET /` is a page with a <video> element.
//
//   ffmpeg -re -f lavfi -i testsrc=size=320x240:rate=25 -c:v libx264 -preset ultrafast -g 50
//     -f mp4 -movflags empty_moov+default_base_moof+frag_keyframe -frag_duration 200000 pipe:1
//     | live_media --port 8080             (one command line)
//   ffplay http://127.0.0.1:8080/live.mp4      # or mpv, or a browser at http://127.0.0.1:8080/
#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include "common/asio_backend.hpp" // asio::, standalone or Boost.Asio
#include "common/fanout_wire.hpp"  // chunked framing, graceful and abortive closes
#include "mp4_boxes.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace {

using asio::ip::tcp;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

struct options {
  unsigned short port = 8080;
  double replay_seconds = 4;            // the replay window, at --max-bitrate
  std::uint64_t max_bitrate = 8000000;  // bits/s: sizes the window and the viewers' queues
  bool align = true;                    // --no-align: viewers start anywhere (to show why not)
  std::uint64_t queue_limit = 0;        // each viewer's; 0: the replay window plus 1 MiB
  int send_buffer = 256 * 1024;         // SO_SNDBUF of each viewer's socket; 0: the kernel's (autotuned)
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "live_media: " << why << "\n"
            << "usage: live_media [--port P] [--replay-seconds S] [--max-bitrate BITS_PER_S] [--queue-limit BYTES] [--send-buffer BYTES] [--no-align] < fragmented.mp4\n";
  std::exit(2);
}

template <class T>
T number(std::string_view text, const std::string& flag) {
  T v{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) usage("bad value for " + flag + ": " + std::string(text));
  return v;
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) usage(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--port") o.port = number<unsigned short>(value(), flag);
    else if (flag == "--replay-seconds") o.replay_seconds = number<double>(value(), flag);
    else if (flag == "--max-bitrate") o.max_bitrate = number<std::uint64_t>(value(), flag);
    else if (flag == "--no-align") o.align = false;
    else if (flag == "--queue-limit") o.queue_limit = number<std::uint64_t>(value(), flag);
    else if (flag == "--send-buffer") o.send_buffer = number<int>(value(), flag);
    else usage("unknown option " + flag);
  }
  if (!(o.replay_seconds >= 0 && o.replay_seconds <= 3600)) usage("--replay-seconds must be 0..3600");
  if (o.send_buffer < 0 || o.send_buffer > (64 << 20)) usage("--send-buffer must be 0..64M");
  if (o.max_bitrate < 1000 || o.max_bitrate > 10'000'000'000ull) usage("--max-bitrate must be 1000..1e10");
  return o;
}

void log(const std::string& line) { std::cerr << "live_media: " << line << std::endl; }

// --- the feed: stdin's top-level boxes into the writer -------------------------------------

// Reads exactly `n` more bytes onto `buf`; false at a clean end of input before the first byte.
asio::awaitable<bool> read_more(asio::posix::stream_descriptor& in, std::vector<std::byte>& buf, std::size_t n) {
  const std::size_t start = buf.size();
  buf.resize(start + n);
  std::size_t got = 0;
  while (got < n) {
    bytecast::error_code ec;
    got += co_await in.async_read_some(asio::buffer(buf.data() + start + got, n - got),
                                       asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::eof && got == 0 && start == 0) co_return false;
    if (ec == asio::error::eof) throw mp4::bad_box("the input ends inside a box");
    if (ec) throw bytecast::system_error(ec, "reading stdin");
  }
  co_return true;
}

// One whole top-level box (header and body); nullopt at a clean end of input.
asio::awaitable<std::optional<std::vector<std::byte>>> next_box(asio::posix::stream_descriptor& in) {
  constexpr std::uint64_t max_box = 64 << 20; // a live fragment larger than this is not sane
  std::vector<std::byte> box;
  if (!co_await read_more(in, box, 8)) co_return std::nullopt;
  auto h = mp4::read_header(box);
  if (!h) {
    co_await read_more(in, box, 8); // the 64-bit size
    h = mp4::read_header(box);
  }
  if (h->size > max_box) throw mp4::bad_box("a '" + h->type + "' box of " + std::to_string(h->size) + " bytes");
  co_await read_more(in, box, static_cast<std::size_t>(h->size) - box.size());
  co_return box;
}

// ftyp + moov become the header; each moof + mdat one chunk, a sync point when it starts with a
// key frame. Other top-level boxes (styp, sidx, free, mfra) are not needed by a live viewer.
asio::awaitable<void> feed(asio::io_context& ctx, bytecast::byte_writer& writer, int& exit_code) {
  asio::posix::stream_descriptor in(ctx, ::dup(0));
  std::vector<std::byte> init, fragment;
  bool fragment_sync = false;
  std::uint64_t fragments = 0, key_fragments = 0;
  try {
    while (auto box = co_await next_box(in)) {
      const std::string type = mp4::read_header(*box)->type;
      if (type == "ftyp") {
        init = std::move(*box);
      } else if (type == "moov") {
        if (init.empty()) throw mp4::bad_box("moov before ftyp");
        init.insert(init.end(), box->begin(), box->end());
        writer.set_header(init);
        log("header: " + std::to_string(init.size()) + " bytes (ftyp + moov)");
      } else if (type == "moof") {
        if (writer.header().empty()) throw mp4::bad_box("a movie fragment before the moov");
        fragment_sync = mp4::starts_with_sync_sample(*box);
        fragment = std::move(*box);
      } else if (type == "mdat") {
        if (fragment.empty()) throw mp4::bad_box("mdat without its moof");
        fragment.insert(fragment.end(), box->begin(), box->end());
        if (fragment_sync) writer.write(fragment, bytecast::sync_point);
        else writer.write(fragment);
        ++fragments;
        key_fragments += fragment_sync ? 1 : 0;
        fragment.clear();
      }
    }
    log("feed ended: " + std::to_string(fragments) + " fragments, " + std::to_string(key_fragments) +
        " with a key frame");
    writer.close();
  } catch (const mp4::bad_box& e) {
    log(std::string("bad input: ") + e.what());
    exit_code = 1;
    writer.close(make_error_code(std::errc::bad_message)); // viewers see a broken response
  } catch (const bytecast::system_error& e) {
    log(std::string("input failed: ") + e.what());
    exit_code = 1;
    writer.close(e.code());
  }
}

// --- HTTP -----------------------------------------------------------------------------------

constexpr std::string_view page = R"(<!doctype html>
<html><head><meta charset="utf-8"><title>live_media</title></head>
<body><video id="v" src="/live.mp4" autoplay muted controls playsinline style="max-width:100%"></video>
<script>document.getElementById("v").play().catch(() => {});</script></body></html>
)";

asio::awaitable<bool> write_all(tcp::socket& s, std::string_view text) {
  bytecast::error_code ec;
  co_await asio::async_write(s, asio::buffer(text.data(), text.size()), asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec;
}

asio::awaitable<void> respond(tcp::socket& s, std::string_view status, std::string_view body) {
  std::string head = "HTTP/1.1 " + std::string(status) +
                     "\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\n\r\n" + std::string(body);
  if (co_await write_all(s, head)) co_await fanout::close_gracefully(s);
}

// Reads the request head (at most 8 KiB, within 10 s); returns its first line, or "" if none came.
asio::awaitable<std::string> read_request_line(tcp::socket& s) {
  std::string head;
  std::array<char, 1024> buf;
  asio::steady_timer timer(co_await asio::this_coro::executor, 10s);
  while (head.find("\r\n\r\n") == std::string::npos) {
    if (head.size() > 8192) co_return "";
    bytecast::error_code ec;
    auto r = co_await (s.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec)) ||
                       timer.async_wait(asio::use_awaitable));
    if (r.index() == 1 || ec) co_return "";
    head.append(buf.data(), std::get<0>(r));
  }
  co_return head.substr(0, head.find("\r\n"));
}

// One write to a client, abandoned after 10 s without completing: a viewer that stopped reading.
template <class Buffers>
asio::awaitable<bool> write_within(tcp::socket& s, const Buffers& buffers) {
  asio::steady_timer timer(co_await asio::this_coro::executor, 10s);
  bytecast::error_code ec;
  auto r = co_await (asio::async_write(s, buffers, asio::redirect_error(asio::use_awaitable, ec)) ||
                     timer.async_wait(asio::use_awaitable));
  co_return r.index() == 0 && !ec;
}

// GET /live.mp4: the header (unless resumed), then batches of whole fragments, one HTTP chunk per
// batch. The response head waits for the first media bytes, so that X-Position can say where
// they start. A viewer that lags (drop_oldest) goes on at the next key frame (aligned). A resumed
// stream older than the window gets 410; one that lags later cannot be gapless any more: its
// response ends broken (no last chunk), as does every response when the feed fails.
asio::awaitable<void> serve_live(tcp::socket& s, bytecast::byte_stream stream, bool has_header, bool resumed) {
  bytecast::error_code ec;
  bytecast::chunk header;
  if (has_header) header = co_await stream.async_next_chunk(asio::redirect_error(asio::use_awaitable, ec));
  std::span<const asio::const_buffer> batch;
  for (;;) {
    if (!ec) batch = co_await stream.async_next_batch(1 << 20, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == bytecast::error::lagged && !resumed) {
      ec = {};
      continue;
    }
    break;
  }
  if (ec == bytecast::error::lagged) co_return co_await respond(s, "410 Gone", "that position is no longer retained\n");
  if (ec) co_return co_await respond(s, "503 Service Unavailable", "the feed ended\n");
  if (batch.empty()) co_return co_await respond(s, "503 Service Unavailable", "the feed ended\n");
  const std::uint64_t media_start = stream.position() - asio::buffer_size(batch);
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nCache-Control: no-store\r\n"
                           "Transfer-Encoding: chunked\r\nConnection: close\r\nX-Position: " +
                           std::to_string(media_start) + "\r\n\r\n";
  if (!co_await write_all(s, head)) co_return;
  fanout::chunked_framing framing;
  if (!resumed && !header.empty()) {
    const asio::const_buffer h = asio::buffer(header.data(), header.size());
    if (!co_await write_within(s, framing.frame(std::span(&h, 1)))) co_return;
  }
  for (;;) {
    if (!co_await write_within(s, framing.frame(batch))) co_return;
    batch = co_await stream.async_next_batch(1 << 20, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == bytecast::error::lagged && !resumed) { // the next read returns a key frame
      log("a viewer fell behind: " + std::to_string(stream.dropped()) + " bytes dropped in all, on at the next key frame");
      continue;
    }
    if (ec) break;                                           // broken: no last chunk
    if (batch.empty()) {                                      // the feed ended
      if (co_await write_within(s, framing.trailer())) co_await fanout::close_gracefully(s);
      co_return;
    }
  }
  bytecast::error_code ignored;
  s.shutdown(tcp::socket::shutdown_both, ignored);
}

struct server {
  options opts;
  bytecast::byte_writer& writer;

  asio::awaitable<void> connection(tcp::socket s) {
    const std::string line = co_await read_request_line(s);
    // "GET /live.mp4?from=123 HTTP/1.1"
    const auto sp1 = line.find(' '), sp2 = line.rfind(' ');
    if (line.empty() || sp1 == std::string::npos || sp2 == sp1 || !line.starts_with("GET ")) {
      if (!line.empty()) co_await respond(s, "400 Bad Request", "GET only\n");
      co_return;
    }
    const std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (target == "/") {
      const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n"
                               "Content-Length: " + std::to_string(page.size()) + "\r\n\r\n" + std::string(page);
      if (co_await write_all(s, head)) co_await fanout::close_gracefully(s);
      co_return;
    }
    const std::string path = target.substr(0, target.find('?'));
    if (path != "/live.mp4") co_return co_await respond(s, "404 Not Found", "try /live.mp4 or /\n");
    const bool has_header = !writer.header().empty();
    if (!has_header && writer.is_open()) co_return co_await respond(s, "503 Service Unavailable", "no video yet\n");
    std::optional<std::uint64_t> from;
    if (const auto q = target.find("?from="); q != std::string::npos)
      from = [&]() -> std::optional<std::uint64_t> {
        std::uint64_t v = 0;
        const std::string_view text = std::string_view(target).substr(q + 6);
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
        return v;
      }();
    if (target.find('?') != std::string::npos && !from)
      co_return co_await respond(s, "400 Bad Request", "the query is ?from=POSITION\n");
    const std::uint64_t limit = opts.queue_limit != 0 ? opts.queue_limit
                                : static_cast<std::uint64_t>(opts.replay_seconds * double(opts.max_bitrate) / 8) + (1 << 20);
    bytecast::stream_options so{.queue_limit = static_cast<std::size_t>(limit),
                                .on_overflow = bytecast::overflow_policy::drop_oldest};
    if (from) {
      so.from_position = *from;
    } else {
      so.replay = true;
      so.align_to_sync_points = opts.align;
      if (!opts.align) so.replay = false; // --no-align: live, from wherever the feed is
    }
    // A bounded kernel buffer: a viewer that falls behind does so in our queue, where it skips to
    // the next key frame, rather than seconds behind in an autotuned socket buffer.
    if (opts.send_buffer != 0) {
      bytecast::error_code ignored;
      s.set_option(asio::socket_base::send_buffer_size(opts.send_buffer), ignored);
    }
    std::optional<bytecast::byte_stream> stream;
    try {
      stream.emplace(writer.stream(so));
    } catch (const bytecast::system_error&) { // from_position ahead of the feed
    }
    if (!stream) co_return co_await respond(s, "416 Range Not Satisfiable", "that position is not written yet\n");
    co_await serve_live(s, std::move(*stream), has_header, from.has_value());
  }

  asio::awaitable<void> accept(tcp::acceptor& acceptor) {
    for (;;) {
      bytecast::error_code ec;
      tcp::socket s = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) continue;
      asio::co_spawn(acceptor.get_executor(), connection(std::move(s)), asio::detached);
    }
  }
};

} // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  if (::fcntl(0, F_GETFD) == -1) usage("stdin is closed: pipe a fragmented MP4 into it");
  asio::io_context ctx;
  const auto replay_bytes = static_cast<std::size_t>(o.replay_seconds * double(o.max_bitrate) / 8);
  bytecast::byte_writer writer(ctx, {.replay_limit = replay_bytes});
  tcp::acceptor acceptor(ctx, {asio::ip::address_v4::loopback(), o.port});
  std::cout << "listening " << acceptor.local_endpoint().port() << std::endl;
  server srv{o, writer};
  int exit_code = 0;
  asio::co_spawn(ctx, srv.accept(acceptor), asio::detached);
  asio::signal_set signals(ctx, SIGINT, SIGTERM);
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    co_await feed(ctx, writer, exit_code);
    bytecast::error_code ignored;
    acceptor.close(ignored); // the viewers finish their responses, then the server exits
    signals.cancel(ignored);
  }, asio::detached);
  signals.async_wait([&](bytecast::error_code ec, int) {
    if (ec) return;
    log("signal: closing");
    writer.close();
    bytecast::error_code ignored;
    acceptor.close(ignored);
    ::close(0); // the feed's read ends (its dup stays until the feed coroutine goes)
    ctx.stop();
  });
  ctx.run();
  return exit_code;
}
