// What the tcp_fanout and http_fanout examples share: the command line, the feed (stdin, or a
// generated one) that goes into ONE bytecast::byte_writer, the accept loop, SIGINT/SIGTERM, and
// `server::stream_to`, which pipes one client's byte_stream into its socket. Each example's
// main.cpp adds only its protocol on top.
//
// Everything runs on one thread (one io_context, run by main): no locks, and the writer never
// writes while a session looks at it.
#ifndef BYTECAST_EXAMPLES_FANOUT_SERVER_HPP
#define BYTECAST_EXAMPLES_FANOUT_SERVER_HPP

#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include "asio_backend.hpp" // asio::, standalone or Boost.Asio

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iostream>
#include <limits>
#include <optional>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

namespace fanout {

using asio::ip::tcp;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

// ---------------------------------------------------------------------------------------------
// The command line

struct options {
  asio::ip::address bind = asio::ip::address_v4::loopback(); // --bind: loopback unless told
  std::uint16_t port = 0;                                    // --port: 0 picks a free one
  bytecast::writer_options writer{};                         // --policy, --queue-limit, --replay
  bool generate = false;                                     // --generate even if stdin is not a terminal
  double rate = 10;                                          // --rate: generated lines per second, 0 = no pause
  std::uint64_t count = 0;                                   // --count: generated lines, 0 = no end
  std::size_t wait_for_clients = 0;                          // --wait-for-clients: feed once N receive it
  std::chrono::milliseconds stats{0};                        // --stats: interval of the stats line, 0 = off
  std::chrono::milliseconds drain{5000};                     // --drain-timeout after the feed's end or a signal
  std::chrono::milliseconds write_timeout{5000};             // --write-timeout: a client that takes no bytes, 0 = none
};

inline constexpr double min_rate = 0.001;   // --rate: a line every 1000 s
inline constexpr double max_rate = 1000000; // --rate: a line every microsecond

namespace detail {

template <class T>
[[nodiscard]] std::optional<T> parse_number(std::string_view text) {
  T value{};
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end) return std::nullopt;
  return value;
}

// "65536", "64k", "4m": bytes, with an optional binary suffix (KiB, MiB, GiB).
[[nodiscard]] inline std::optional<std::size_t> parse_size(std::string_view text) {
  std::size_t unit = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'k': case 'K': unit = std::size_t{1} << 10; break;
      case 'm': case 'M': unit = std::size_t{1} << 20; break;
      case 'g': case 'G': unit = std::size_t{1} << 30; break;
      default: break;
    }
    if (unit != 1) text.remove_suffix(1);
  }
  auto value = parse_number<std::size_t>(text);
  if (!value || *value > std::numeric_limits<std::size_t>::max() / unit) return std::nullopt;
  return *value * unit;
}

inline void print_usage(std::ostream& out, std::string_view program, std::string_view summary) {
  out << "usage: " << program << " [options]\n"
      << summary << "\n"
      << "The feed is stdin when stdin is not a terminal (its end ends the feed), else generated lines.\n"
      << "A closed stdin is an error (exit 2) unless --generate.\n"
      << "\n"
      << "options:\n"
      << "  --port N             port to listen on (default 0: pick a free one; printed on stdout)\n"
      << "  --bind ADDR          address to listen on (default 127.0.0.1)\n"
      << "  --policy P           wait | drop_oldest | disconnect: what happens when a client's queue\n"
      << "                       is full (default wait; needs --queue-limit)\n"
      << "  --queue-limit BYTES  per-client queue limit, 0 = unbounded (default 0)\n"
      << "  --replay BYTES       recent bytes a new client gets first (default 0)\n"
      << "  --generate           generated feed even when stdin is not a terminal\n"
      << "  --rate N             generated lines per second, 0.001 to 1000000, or 0 = no pause\n"
      << "                       (default 10)\n"
      << "  --count N            generated lines in total, then the feed ends (default 0: no end)\n"
      << "  --wait-for-clients N start the feed once N clients are there to receive it (default 0:\n"
      << "                       at once)\n"
      << "  --stats MS           a stats line on stderr every MS ms, when it changed (default 0: off)\n"
      << "  --drain-timeout MS   after the feed's end or SIGINT/SIGTERM, how long clients may take\n"
      << "                       to receive what is queued for them (default 5000)\n"
      << "  --write-timeout MS   a client that takes no bytes for MS ms is dropped (default 5000;\n"
      << "                       0: never)\n"
      << "  --help               this text\n"
      << "BYTES take an optional k, m or g suffix (KiB, MiB, GiB).\n";
}

[[noreturn]] inline void usage_error(std::string_view program, std::string_view summary, const std::string& what) {
  std::cerr << program << ": " << what << "\n\n";
  print_usage(std::cerr, program, summary);
  std::exit(2);
}

} // namespace detail

/// Parses the command line shared by both servers. Bad options: usage on stderr, exit 2;
/// --help: usage on stdout, exit 0.
[[nodiscard]] inline options parse_options(int argc, char** argv, std::string_view program,
                                           std::string_view summary) {
  options o;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view name = args[i];
    std::optional<std::string_view> inline_value; // --name=value
    if (auto eq = name.find('='); name.starts_with("--") && eq != std::string_view::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto fail = [&](const std::string& what) { detail::usage_error(program, summary, what); };
    auto value = [&]() -> std::string_view {
      if (inline_value) return *inline_value;
      if (i + 1 == args.size()) fail(std::string(name) + " needs a value");
      return args[++i];
    };
    auto size_value = [&]() {
      auto v = detail::parse_size(value());
      if (!v) fail(std::string(name) + ": expected a byte count such as 65536, 64k or 4m");
      return *v;
    };
    auto millis_value = [&]() {
      auto v = detail::parse_number<std::uint32_t>(value());
      if (!v) fail(std::string(name) + ": expected milliseconds");
      return std::chrono::milliseconds(*v);
    };

    if (name == "--help" || name == "-h") {
      detail::print_usage(std::cout, program, summary);
      std::exit(0);
    } else if (name == "--port") {
      auto v = detail::parse_number<std::uint16_t>(value());
      if (!v) fail("--port: expected a number from 0 to 65535");
      o.port = *v;
    } else if (name == "--bind") {
      bytecast::error_code ec;
      o.bind = asio::ip::make_address(std::string(value()), ec);
      if (ec) fail("--bind: expected an IPv4 or IPv6 address");
    } else if (name == "--policy") {
      std::string_view p = value();
      if (p == "wait") o.writer.on_overflow = bytecast::overflow_policy::wait;
      else if (p == "drop_oldest") o.writer.on_overflow = bytecast::overflow_policy::drop_oldest;
      else if (p == "disconnect") o.writer.on_overflow = bytecast::overflow_policy::disconnect;
      else fail("--policy: expected wait, drop_oldest or disconnect");
    } else if (name == "--queue-limit") {
      o.writer.queue_limit = size_value();
    } else if (name == "--replay") {
      o.writer.replay_limit = size_value();
    } else if (name == "--generate") {
      if (inline_value) fail("--generate takes no value");
      o.generate = true;
    } else if (name == "--rate") {
      // Bounded so that every rate accepted means what it says: 1/rate seconds must fit the
      // clock's nanoseconds (1e-10 overflowed into no pause at all) and stay whole
      // nanoseconds; and the generator keeps up with the fastest (2M lines in 2.0 s at
      // --rate 1000000 on a 2-vCPU VM).
      auto v = detail::parse_number<double>(value());
      if (!v || !(*v == 0 || (*v >= min_rate && *v <= max_rate)))
        fail("--rate: expected 0 (no pause) or lines per second from 0.001 to 1000000");
      o.rate = *v;
    } else if (name == "--count") {
      auto v = detail::parse_number<std::uint64_t>(value());
      if (!v) fail("--count: expected a number of lines");
      o.count = *v;
    } else if (name == "--wait-for-clients") {
      auto v = detail::parse_number<std::size_t>(value());
      if (!v) fail("--wait-for-clients: expected a number of clients");
      o.wait_for_clients = *v;
    } else if (name == "--stats") {
      o.stats = millis_value();
    } else if (name == "--drain-timeout") {
      o.drain = millis_value();
    } else if (name == "--write-timeout") {
      o.write_timeout = millis_value();
    } else {
      fail("unknown option '" + std::string(args[i]) + "'");
    }
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Framing: what goes around each chunk on the wire

/// Raw bytes, as written (tcp_fanout; http_fanout for HTTP/1.0 clients).
struct raw_framing {
  [[nodiscard]] std::array<asio::const_buffer, 1> frame(std::span<const std::byte> bytes) const {
    return {asio::buffer(bytes.data(), bytes.size())};
  }
  [[nodiscard]] asio::const_buffer trailer() const { return {}; }
};

/// One HTTP/1.1 chunk per bytecast chunk, then the last-chunk `0\r\n\r\n` (http_fanout).
class chunked_framing {
 public:
  [[nodiscard]] std::array<asio::const_buffer, 3> frame(std::span<const std::byte> bytes) {
    auto [end, ec] = std::to_chars(size_line_.data(), size_line_.data() + size_line_.size() - 2, bytes.size(), 16);
    (void)ec; // 16 hex digits always fit
    *end++ = '\r';
    *end++ = '\n';
    return {asio::buffer(size_line_.data(), static_cast<std::size_t>(end - size_line_.data())),
            asio::buffer(bytes.data(), bytes.size()), asio::buffer(crlf, 2)};
  }
  [[nodiscard]] asio::const_buffer trailer() const { return asio::buffer(last_chunk, 5); }

 private:
  static constexpr const char* crlf = "\r\n";
  static constexpr const char* last_chunk = "0\r\n\r\n";
  std::array<char, 20> size_line_{};
};

// ---------------------------------------------------------------------------------------------
// Closing a connection

/// The graceful end: our FIN after the last byte, then wait (at most `limit`) for the peer to
/// close too, reading and discarding what it still sends. Closing with unread input would send
/// a reset, and a reset can destroy the response the peer has not read yet.
inline asio::awaitable<void> close_gracefully(tcp::socket& socket, std::chrono::milliseconds limit = 2s) {
  bytecast::error_code ec;
  socket.shutdown(tcp::socket::shutdown_send, ec);
  if (!ec) {
    auto drain = [](tcp::socket& s) -> asio::awaitable<void> {
      std::array<char, 4096> sink;
      bytecast::error_code read_ec;
      while (!read_ec) co_await s.async_read_some(asio::buffer(sink), asio::redirect_error(asio::use_awaitable, read_ec));
    };
    asio::steady_timer timer(co_await asio::this_coro::executor, limit);
    co_await (drain(socket) || timer.async_wait(asio::redirect_error(asio::use_awaitable, ec)));
  }
  socket.close(ec);
}

/// The abortive end: a reset, and the kernel forgets whatever was still unsent. For a client
/// that cannot receive a clean end anyway (cut off, or still there when the drain time is up).
inline void close_abortively(tcp::socket& socket) {
  bytecast::error_code ec;
  socket.set_option(asio::socket_base::linger(true, 0), ec);
  socket.close(ec);
}

// ---------------------------------------------------------------------------------------------
// Waiting for clients

/// How many clients receive the feed, and a wait until there are enough (--wait-for-clients).
/// It stands in for the writer's async_wait_for_streams (API.md section 6) until the library
/// has it; then server::wait_for_clients() calls that instead, and this class goes.
class client_count {
 public:
  explicit client_count(asio::io_context& ctx) : changed_(ctx, std::chrono::steady_clock::time_point::max()) {}

  /// Counts one client for as long as it lives.
  class hold {
   public:
    explicit hold(client_count& count) : count_(count) {
      ++count_.clients_;
      count_.changed_.cancel(); // wakes a wait
    }
    hold(const hold&) = delete;
    hold& operator=(const hold&) = delete;
    ~hold() { --count_.clients_; }

   private:
    client_count& count_;
  };

  /// Completes once at least `n` clients are counted, or at once after stop().
  asio::awaitable<void> wait_for(std::size_t n) {
    // A timer that never expires is the event: cancel() wakes its waiter, which looks again.
    // One thread runs everything, so no change can slip in between the look and the wait.
    while (clients_ < n && !stopped_) {
      bytecast::error_code ec;
      changed_.expires_at(std::chrono::steady_clock::time_point::max());
      co_await changed_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  /// Ends a wait for good: the server shuts down.
  void stop() {
    stopped_ = true;
    changed_.cancel();
  }

 private:
  std::size_t clients_ = 0;
  bool stopped_ = false;
  asio::steady_timer changed_;
};

// ---------------------------------------------------------------------------------------------
// The server

/// One accepted connection, owned by its session coroutine.
struct client {
  tcp::socket socket;
  std::uint64_t id = 0;
  std::string peer;              // "127.0.0.1:40312", for the log
  bool awaiting_request = false; // set by a protocol while it reads a request: closed at once on shutdown
};

class server {
 public:
  /// What a protocol does with a new connection; it returns when the connection is done.
  using session = asio::awaitable<void> (*)(server&, client&);

  /// `feed_fd`: the descriptor the feed is read from (the server closes it), or -1 for the
  /// generated feed.
  server(asio::io_context& ctx, const options& opts, std::string_view program, int feed_fd)
      : ctx_(ctx),
        opts_(opts),
        program_(program),
        writer_(ctx, opts.writer),
        acceptor_(ctx),
        signals_(ctx, SIGINT, SIGTERM),
        feed_timer_(ctx),
        stats_timer_(ctx),
        drain_timer_(ctx),
        accept_retry_(ctx),
        accept_quiet_(ctx),
        receiving_(ctx) {
    if (feed_fd >= 0) stdin_.emplace(ctx, feed_fd);
  }

  /// Listens (printing "listening on ADDR:PORT" on stdout), then starts the feed, the signal
  /// handling and the stats line. Throws bytecast::system_error when the address cannot be used.
  void start(session s) {
    const tcp::endpoint wanted(opts_.bind, opts_.port);
    acceptor_.open(wanted.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(wanted);
    acceptor_.listen();
    std::cout << "listening on " << to_text(acceptor_.local_endpoint()) << std::endl; // flushed: tests wait for it

    if (opts_.writer.queue_limit == 0 && opts_.writer.on_overflow != bytecast::overflow_policy::wait)
      log("note: --policy has no effect without --queue-limit: every client's queue is unbounded");

    asio::co_spawn(ctx_, accept_loop(s), detached_with_log("accept loop"));
    asio::co_spawn(ctx_, feed(), detached_with_log("feed"));
    wait_for_signal();
    if (opts_.stats.count() > 0) print_stats_every_interval();
  }

  /// A new reader of the feed: the retained recent chunks (--replay) first, then everything
  /// written from now on.
  [[nodiscard]] bytecast::byte_stream subscribe() { return writer_.stream(bytecast::replay); }

  /// Pipes `stream` into `c.socket`, each chunk framed by `framing`, and closes the connection:
  /// - the feed ended: every chunk, the framing's trailer, then a graceful close;
  /// - the stream was cut off (`disconnect` policy, queue full): an abortive close at once;
  /// - the client went away (or the write failed): close.
  /// Under `drop_oldest` a client that lagged loses the oldest chunks and carries on.
  template <class Framing>
  asio::awaitable<void> stream_to(client& c, bytecast::byte_stream stream, Framing framing) {
    pipe_result r;
    {
      const client_count::hold counted(receiving_); // for --wait-for-clients, while it has its stream
      r = co_await pipe(c, std::move(stream), std::move(framing)); // the stream is gone after this
    }
    switch (r.end) {
      case pipe_end::finished:
        log(c, "finished, " + std::to_string(r.sent) + " bytes sent");
        co_await close_gracefully(c.socket);
        break;
      case pipe_end::cut_off:
        ++cut_off_;
        log(c, "cut off: its queue overflowed the queue limit, " + std::to_string(r.sent) + " bytes sent");
        close_abortively(c.socket);
        break;
      case pipe_end::gone:
        log(c, "gone (" + why_gone(r.error) + "), " + std::to_string(r.sent) + " bytes sent");
        close_abortively(c.socket);
        break;
    }
    if (r.dropped != 0) log(c, "lost " + std::to_string(r.dropped) + " bytes to drop_oldest");
  }

  /// asio::async_write to `c`, bounded by --write-timeout: a client that takes no bytes for that
  /// long fails the write with asio::error::timed_out (and its connection is useless then: a
  /// message may be cut in half). The bound is on progress, not on the whole write, so a slow
  /// client that keeps reading stays. For a session's own few writes (an HTTP response head);
  /// stream_to's writes have their own watch, cheaper than a timer per write.
  template <class ConstBufferSequence>
  asio::awaitable<bytecast::error_code> write(client& c, const ConstBufferSequence& buffers) {
    bytecast::error_code ec;
    if (opts_.write_timeout.count() == 0) {
      co_await asio::async_write(c.socket, buffers, asio::redirect_error(asio::use_awaitable, ec));
      co_return ec;
    }
    // The deadline moves on whenever a partial write made progress.
    auto deadline = std::chrono::steady_clock::now() + opts_.write_timeout;
    std::size_t written = 0;
    auto until_done = [&](const bytecast::error_code& error, std::size_t total) -> std::size_t {
      if (total > written) {
        written = total;
        deadline = std::chrono::steady_clock::now() + opts_.write_timeout;
      }
      return asio::transfer_all()(error, total);
    };
    auto done = co_await (asio::async_write(c.socket, buffers, until_done, asio::redirect_error(asio::use_awaitable, ec)) ||
                          wait_until(deadline));
    co_return done.index() == 0 ? ec : bytecast::error_code(asio::error::timed_out);
  }

  /// One line on stderr, prefixed with the program's name.
  void log(std::string_view text) const {
    std::string line;
    line.append(program_).append(": ").append(text).append("\n");
    std::cerr << line << std::flush;
  }
  void log(const client& c, std::string_view text) const {
    log("client " + std::to_string(c.id) + " (" + c.peer + "): " + std::string(text));
  }

 private:
  enum class pipe_end { finished, cut_off, gone };
  struct ending {
    pipe_end end = pipe_end::gone;
    bytecast::error_code error; // why it is gone
  };
  struct pipe_result {
    pipe_end end = pipe_end::gone;
    bytecast::error_code error;
    std::uint64_t sent = 0;    // payload bytes written to the socket
    std::uint64_t dropped = 0; // bytes lost to drop_oldest
  };

  // Shared by the pump and the watches of one client.
  struct write_progress {
    std::uint64_t started = 0;                   // socket writes started so far
    bool pending = false;                        // one is in progress
    std::chrono::steady_clock::time_point moved; // when it started, or last got bytes out
  };

  [[nodiscard]] std::string why_gone(const bytecast::error_code& ec) const {
    if (ec == asio::error::eof) return "closed by the client";
    if (ec == asio::error::message_size)
      return "it sent more than " + std::to_string(max_client_bytes) + " bytes; a client only receives";
    if (ec == asio::error::timed_out)
      return "it took no bytes for " + std::to_string(opts_.write_timeout.count()) + " ms: --write-timeout";
    if (ec == asio::error::operation_aborted && stopping_) return "closed by the server: the drain time was up";
    return ec.message();
  }

  static std::string to_text(const tcp::endpoint& ep) {
    std::ostringstream out;
    out << ep; // "127.0.0.1:8080", "[::1]:8080"
    return out.str();
  }

  std::function<void(std::exception_ptr)> detached_with_log(std::string what) {
    return [this, what = std::move(what)](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log(what + " failed: " + ex.what());
      }
    };
  }

  // --- the feed: the one writer ----------------------------------------------------------------

  asio::awaitable<void> feed() {
    if (opts_.wait_for_clients > 0) {
      log("feed: waiting for " + std::to_string(opts_.wait_for_clients) + " clients");
      co_await wait_for_clients(opts_.wait_for_clients);
      if (stopping_) co_return; // a signal came first
      log(std::to_string(opts_.wait_for_clients) + " clients connected: the feed starts");
    }
    if (stdin_)
      co_await feed_stdin();
    else
      co_await feed_generated();
    if (!stopping_) shut_down("feed ended after " + std::to_string(writer_.bytes_written()) + " bytes"); // not by a signal
  }

  // Once `n` clients receive the feed (they subscribed: each gets it from its first byte on).
  // With the library's async_wait_for_streams (API.md section 6) this becomes
  //   co_await writer_.async_wait_for_streams(n, asio::redirect_error(asio::use_awaitable, ec));
  // (broken_pipe when the writer is closed first), and client_count goes, with its hold in
  // stream_to().
  asio::awaitable<void> wait_for_clients(std::size_t n) { co_await receiving_.wait_for(n); }

  // stdin (a dup of it, see run()), in chunks of what one read returns (at most 64 KiB). A
  // stream_descriptor works for pipes, terminals and sockets, and (by plain reads, never
  // through epoll) for regular files.
  asio::awaitable<void> feed_stdin() {
    log("feed: stdin");
    bytecast::error_code ec;
    std::vector<std::byte> buffer(64 * 1024);
    for (;;) {
      std::size_t n = co_await stdin_->async_read_some(asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec != asio::error::eof && ec != asio::error::operation_aborted) log("reading stdin: " + ec.message());
        break;
      }
      // async_write, not write: under `wait` it waits until every client has room (and so
      // stops reading stdin: backpressure up the pipe), under the other policies it never waits.
      co_await writer_.async_write(asio::buffer(buffer.data(), n), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break; // broken_pipe: the writer was closed by a signal
    }
    stdin_->close(ec);
  }

  // "line 000001\n", "line 000002\n", ... at --rate lines per second.
  asio::awaitable<void> feed_generated() {
    std::ostringstream what;
    what << "feed: generated lines, ";
    if (opts_.rate > 0) what << opts_.rate << " per second"; else what << "no pause";
    if (opts_.count > 0) what << ", " << opts_.count << " in total";
    log(what.str());
    const auto period = opts_.rate > 0 ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                             std::chrono::duration<double>(1.0 / opts_.rate))
                                       : std::chrono::steady_clock::duration::zero();
    auto next = std::chrono::steady_clock::now();
    bytecast::error_code ec;
    for (std::uint64_t n = 1; opts_.count == 0 || n <= opts_.count; ++n) {
      std::array<char, 32> line{};
      const int len = std::snprintf(line.data(), line.size(), "line %06llu\n", static_cast<unsigned long long>(n));
      co_await writer_.async_write(asio::buffer(line.data(), static_cast<std::size_t>(len)),
                                   asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return; // the writer was closed by a signal
      // On schedule: wait only when ahead of it. A timer wakes up late by some microseconds,
      // so at high rates the lines due meanwhile go out at once; but after a stall (a `wait`
      // writer waiting for room) the schedule starts again from now, with no burst to catch up.
      next += period;
      const auto now = std::chrono::steady_clock::now();
      if (now - next > max_catch_up) next = now;
      if (next <= now) continue;
      feed_timer_.expires_at(next);
      co_await feed_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return; // cancelled by a signal
    }
  }

  // --- connections -----------------------------------------------------------------------------

  asio::awaitable<void> accept_loop(session s) {
    for (;;) {
      bytecast::error_code ec;
      tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (!acceptor_.is_open()) co_return;              // stopped
      if (ec == asio::error::connection_aborted) continue; // the client left before we took it
      if (ec) {
        // Out of file descriptors (EMFILE, ENFILE) or memory: the connection stays in the
        // listen queue, and an accept at once would fail again. So the next try comes when
        // one of our connections closes (a descriptor is free), or after 1 s.
        note_failed_accept(ec);
        accept_retry_.expires_after(1s);
        co_await accept_retry_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec); // a live feed: send small chunks at once
      asio::co_spawn(ctx_, run_session(s, std::move(socket), ++last_id_), detached_with_log("session"));
    }
  }

  // Failed accepts come in episodes, logged in two lines: one when the first fails, one with
  // the count once none has failed for accept_quiet_time. Near the limit, accepts fail and work
  // by turns as connections come and go: still one episode, not two lines per connection.
  void note_failed_accept(const bytecast::error_code& ec) {
    const auto now = std::chrono::steady_clock::now();
    if (accept_trouble_.failures++ == 0) {
      accept_trouble_.first = now;
      accept_trouble_.why = ec.message();
      log("accept: " + accept_trouble_.why + "; new connections wait until it works again");
    }
    accept_trouble_.last = now;
    accept_quiet_.expires_after(accept_quiet_time); // cancels the previous wait: the episode goes on
    accept_quiet_.async_wait([this](bytecast::error_code wait_ec) {
      if (wait_ec) return; // a later failure, or the server stopped accepting
      const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(accept_trouble_.last - accept_trouble_.first);
      log("accept: works again after " + std::to_string(accept_trouble_.failures) + " failed accepts (" +
          accept_trouble_.why + ") in " + std::to_string(took.count()) + " ms");
      accept_trouble_.failures = 0;
    });
  }

  asio::awaitable<void> run_session(session s, tcp::socket socket, std::uint64_t id) {
    client c{std::move(socket), id, {}};
    bytecast::error_code ec;
    auto peer = c.socket.remote_endpoint(ec);
    c.peer = ec ? "?" : to_text(peer);
    connections_.insert(&c);
    log(c, "connected");
    try {
      co_await s(*this, c);
    } catch (const std::exception& e) {
      log(c, std::string("session failed: ") + e.what());
    }
    close_abortively(c.socket); // a no-op if the session closed it
    connections_.erase(&c);
    accept_retry_.cancel(); // a descriptor is free: an accept that waits for one may try again
    maybe_finish();
  }

  // Returns once `deadline` has passed, which may move later meanwhile (the write's progress).
  static asio::awaitable<void> wait_until(const std::chrono::steady_clock::time_point& deadline) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    bytecast::error_code ec;
    do {
      timer.expires_at(deadline);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    } while (!ec && std::chrono::steady_clock::now() < deadline);
  }

  // The pump and its watches, each returning how the connection ends. The first of them to
  // finish decides: `||` cancels the others and waits for them, and then the stream goes.
  template <class Framing>
  asio::awaitable<pipe_result> pipe(client& c, bytecast::byte_stream stream, Framing framing) {
    pipe_result r;
    write_progress progress;
    auto first = [](const auto& winner) { return std::visit([](const ending& e) { return e; }, winner); };
    ending e;
    if (watches_cut_off())
      e = first(co_await (pump(c, stream, framing, progress, r.sent) || watch_peer(c) || watch_write_timeout(progress) ||
                          watch_cut_off(stream, progress)));
    else
      e = first(co_await (pump(c, stream, framing, progress, r.sent) || watch_peer(c) || watch_write_timeout(progress)));
    r.end = e.end;
    r.error = e.error;
    r.dropped = stream.dropped();
    co_return r;
  }

  // The reader loop of API.md section 1: drain what is queued, wait only when nothing is.
  template <class Framing>
  asio::awaitable<ending> pump(client& c, bytecast::byte_stream& stream, Framing& framing, write_progress& progress,
                               std::uint64_t& sent) {
    bytecast::error_code ec;
    bool lagged = false;
    for (;;) {
      std::span<const std::byte> bytes = stream.try_next(ec);
      if (ec == asio::error::would_block)
        bytes = co_await stream.async_next(asio::redirect_error(asio::use_awaitable, ec));
      if (ec == bytecast::error::lagged) {
        // drop_oldest: this client was too slow and lost its oldest chunks; the rest follows.
        ++lagged_events_;
        if (!std::exchange(lagged, true)) log(c, "lagged: its oldest chunks were dropped");
        continue;
      }
      if (ec == bytecast::error::overflowed) co_return ending{pipe_end::cut_off, ec};
      if (ec) co_return ending{pipe_end::gone, ec}; // operation_aborted: a watch finished first
      if (bytes.empty()) break;                     // the close sentinel: the feed ended

      // The span stays valid until the next read on the stream, so for the whole write.
      ec = co_await write_noting_progress(c.socket, framing.frame(bytes), progress);
      if (ec) co_return ending{pipe_end::gone, ec};
      sent += bytes.size();
    }
    if (asio::const_buffer trailer = framing.trailer(); trailer.size() != 0) {
      ec = co_await write_noting_progress(c.socket, trailer, progress);
      if (ec) co_return ending{pipe_end::gone, ec};
    }
    co_return ending{pipe_end::finished, {}};
  }

  // The pump's asio::async_write, which tells the watches through `progress` that a write is
  // pending, and when it last got bytes out (each partial write of a large chunk counts).
  template <class ConstBufferSequence>
  static asio::awaitable<bytecast::error_code> write_noting_progress(tcp::socket& socket, const ConstBufferSequence& buffers,
                                                                     write_progress& progress) {
    ++progress.started;
    progress.pending = true;
    progress.moved = std::chrono::steady_clock::now();
    std::size_t written = 0;
    auto noting_progress = [&](const bytecast::error_code& error, std::size_t total) -> std::size_t {
      if (total > written) {
        written = total;
        progress.moved = std::chrono::steady_clock::now();
      }
      return asio::transfer_all()(error, total);
    };
    bytecast::error_code ec;
    co_await asio::async_write(socket, buffers, noting_progress, asio::redirect_error(asio::use_awaitable, ec));
    progress.pending = false;
    co_return ec;
  }

  // --write-timeout for the pump: ends the connection when one socket write got no bytes out for
  // that long (the client stopped reading, or vanished without a reset). It sleeps until the
  // earliest moment that could be so and looks again: no timer to set per write, which for
  // small chunks would cost more than the write.
  asio::awaitable<ending> watch_write_timeout(const write_progress& progress) {
    const auto limit = opts_.write_timeout;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
      const auto now = std::chrono::steady_clock::now();
      if (limit.count() == 0)
        timer.expires_at(std::chrono::steady_clock::time_point::max()); // no timeout: until cancelled
      else if (!progress.pending)
        timer.expires_at(now + limit);
      else if (now - progress.moved < limit)
        timer.expires_at(progress.moved + limit);
      else
        co_return ending{pipe_end::gone, asio::error::timed_out};
      bytecast::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return ending{pipe_end::gone, ec}; // cancelled: another one finished first
    }
  }

  // Reads (and discards) what the client sends, to notice at once when it goes away: when it
  // closes the connection (or only shuts down its sending side) or resets it. Without this a
  // quiet feed would never find out, and the stream would live on. A client here only
  // receives: one that sends more than max_client_bytes is not one (or floods us), and goes.
  asio::awaitable<ending> watch_peer(client& c) {
    std::array<char, 4096> sink;
    std::size_t received = 0;
    for (;;) {
      bytecast::error_code ec;
      received += co_await c.socket.async_read_some(asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return ending{pipe_end::gone, ec};
      if (received > max_client_bytes) co_return ending{pipe_end::gone, asio::error::message_size};
    }
  }

  [[nodiscard]] bool watches_cut_off() const noexcept {
    return opts_.writer.queue_limit != 0 && opts_.writer.on_overflow == bytecast::overflow_policy::disconnect;
  }

  // Under `disconnect` the writer cuts a full stream off, and the stream says so
  // (error::overflowed) at its next read. But the pump of a client that stopped reading is
  // stuck in a socket write and never reads again. So while one socket write stays pending,
  // this watch compares what the writer wrote with what reached the stream's queue: the pump
  // takes nothing meanwhile, so each write grows the queue by its size unless it did not reach
  // the stream, which under `disconnect` means the stream was cut off. Exact here, because the
  // writer (on this same thread) never writes between the two reads below.
  asio::awaitable<ending> watch_cut_off(const bytecast::byte_stream& stream, const write_progress& progress) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    std::optional<std::uint64_t> write; // the write pending at the last look
    std::uint64_t written = 0;
    std::size_t queued = 0;
    for (;;) {
      timer.expires_after(cut_off_check_interval);
      bytecast::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return ending{pipe_end::gone, ec}; // cancelled: the pump or the peer watch finished first
      const std::uint64_t written_now = writer_.bytes_written();
      const std::size_t queued_now = stream.queued_bytes();
      if (progress.pending && write == progress.started && queued_now >= queued &&
          queued_now - queued < written_now - written)
        co_return ending{pipe_end::cut_off, bytecast::error::overflowed};
      write = progress.pending ? std::optional(progress.started) : std::nullopt;
      written = written_now;
      queued = queued_now;
    }
  }

  // --- the end ---------------------------------------------------------------------------------

  void stop_accepting() {
    bytecast::error_code ec;
    acceptor_.close(ec);
    accept_retry_.cancel();
    accept_quiet_.cancel();
  }

  void wait_for_signal() {
    signals_.async_wait([this](bytecast::error_code ec, int signo) {
      if (ec || finished_) return; // cancelled: the server is done
      wait_for_signal();           // first: on_signal may finish the server, and cancel this wait
      on_signal(signo == SIGINT ? "SIGINT" : "SIGTERM");
    });
  }

  // The first signal shuts down (with the drain time); a signal while the server drains,
  // after the feed's end or an earlier signal, closes what is left at once.
  void on_signal(const std::string& name) {
    if (stopping_) {
      log(name + " while draining: closing " + std::to_string(connections_.size()) + " connections now");
      close_all();
      return;
    }
    shut_down(name + ": shutting down");
  }

  // At the feed's end or the first signal: stop accepting, end the feed, and give the clients
  // --drain-timeout to receive what is queued for them. After that time, close what is left:
  // without it a client that never reads would keep the server running for ever.
  void shut_down(const std::string& why) {
    bytecast::error_code ec;
    stopping_ = true;
    log(why + "; " + std::to_string(connections_.size()) + " clients have " + std::to_string(opts_.drain.count()) +
        " ms to drain");
    stop_accepting();
    close_awaiting_request();
    writer_.close(); // every client gets what is queued for it, then the end; wakes a waiting feed
    receiving_.stop();
    feed_timer_.cancel();
    if (stdin_) stdin_->cancel(ec);
    drain_timer_.expires_after(opts_.drain);
    drain_timer_.async_wait([this](bytecast::error_code ec) {
      if (ec || connections_.empty()) return;
      log("drain time is up: closing " + std::to_string(connections_.size()) + " connections");
      close_all();
    });
    maybe_finish();
  }

  // Connections that have not sent their request yet have nothing to drain: closed now, their
  // requests would only get an empty response (or wait for the request timeout).
  void close_awaiting_request() {
    std::size_t closed = 0;
    for (client* c : connections_) {
      if (!c->awaiting_request) continue;
      bytecast::error_code ec;
      c->socket.close(ec); // its session's read ends with operation_aborted
      ++closed;
    }
    if (closed != 0) log("closed " + std::to_string(closed) + " connections that had sent no request");
  }

  void close_all() {
    for (client* c : connections_) close_abortively(c->socket); // their sessions see the error and end
  }

  // Once the feed ended and the last connection is gone, nothing else may keep run() going.
  void maybe_finish() {
    if (finished_ || writer_.is_open() || acceptor_.is_open() || !connections_.empty()) return;
    finished_ = true; // for handlers that completed before the cancellations below
    bytecast::error_code ec;
    signals_.cancel(ec);
    drain_timer_.cancel();
    stats_timer_.cancel();
    if (opts_.stats.count() > 0) print_stats(true);
  }

  // --- stats -----------------------------------------------------------------------------------

  // "stats: connections=3 streams=3 bytes=1048576 cut_off=0 lagged=0"; `streams` is the
  // writer's stream_count(): it drops as soon as a client's stream is destroyed or cut off.
  void print_stats(bool force = false) {
    std::string line = "stats: connections=" + std::to_string(connections_.size()) +
                       " streams=" + std::to_string(writer_.stream_count()) +
                       " bytes=" + std::to_string(writer_.bytes_written()) +
                       " cut_off=" + std::to_string(cut_off_) + " lagged=" + std::to_string(lagged_events_);
    if (!force && line == last_stats_) return;
    last_stats_ = line;
    log(line);
  }

  void print_stats_every_interval() {
    print_stats();
    stats_timer_.expires_after(opts_.stats);
    stats_timer_.async_wait([this](bytecast::error_code ec) {
      if (!ec && !finished_) print_stats_every_interval();
    });
  }

  static constexpr auto cut_off_check_interval = 200ms;
  static constexpr std::size_t max_client_bytes = 64 * 1024; // what a client may send (after its request)
  static constexpr auto max_catch_up = 100ms; // the generated feed: a longer delay is a stall
  static constexpr auto accept_quiet_time = 2s; // without a failed accept: the episode is over

  asio::io_context& ctx_;
  const options opts_;
  const std::string program_;
  bytecast::byte_writer writer_;
  tcp::acceptor acceptor_;
  asio::signal_set signals_;
  std::optional<asio::posix::stream_descriptor> stdin_;
  asio::steady_timer feed_timer_;
  asio::steady_timer stats_timer_;
  asio::steady_timer drain_timer_;
  asio::steady_timer accept_retry_; // the accept loop's back-off when accepts fail
  asio::steady_timer accept_quiet_; // ends an episode of failed accepts
  struct {
    std::uint64_t failures = 0; // 0: no episode
    std::string why;            // the first failure's message
    std::chrono::steady_clock::time_point first, last;
  } accept_trouble_; // the episode of failed accepts going on, for the log
  client_count receiving_; // clients in stream_to(), for --wait-for-clients
  std::set<client*> connections_; // every open connection, for close_all()
  std::uint64_t last_id_ = 0;
  std::uint64_t cut_off_ = 0;
  std::uint64_t lagged_events_ = 0;
  bool stopping_ = false; // shutting down: the feed ended, or a signal came
  bool finished_ = false; // the feed ended and every connection is gone
  std::string last_stats_;
};

/// The common main(): options, the feed's source, one io_context on this thread, run until
/// everything is done. Exit status 2 for bad options or a closed stdin, 1 when the server
/// cannot start.
inline int run(int argc, char** argv, std::string_view program, std::string_view summary, server::session s) {
  const options opts = parse_options(argc, argv, program, summary);

  // The feed's source is settled before the io_context exists: the context opens descriptors
  // of its own (epoll, an eventfd, a timerfd), and with fd 0 closed (`server <&-`) the first
  // of them would become "stdin", and its bytes the feed.
  int feed_fd = -1; // -1: the generated feed
  if (!opts.generate) {
    if (::fcntl(STDIN_FILENO, F_GETFD) == -1) {
      std::cerr << program << ": stdin is closed: pipe the feed into it, or use --generate\n";
      return 2;
    }
    if (::isatty(STDIN_FILENO) != 1) {
      feed_fd = ::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0); // closing ours leaves fd 0 alone
      if (feed_fd == -1) {
        std::cerr << program << ": cannot read stdin: " << std::system_category().message(errno) << '\n';
        return 1;
      }
    }
  }

  std::signal(SIGPIPE, SIG_IGN); // a closed stdout must not kill the server
  try {
    asio::io_context ctx;
    server srv(ctx, opts, program, feed_fd);
    srv.start(s);
    ctx.run();
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << '\n';
    return 1;
  }
  return 0;
}

} // namespace fanout

#endif // BYTECAST_EXAMPLES_FANOUT_SERVER_HPP
