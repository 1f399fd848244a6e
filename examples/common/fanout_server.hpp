// The fan-out server that tcp_fanout and http_fanout share: ONE bytecast::byte_writer, fed from
// a feed_source (fanout_feed.hpp); the accept loop; one coroutine per connection, in which the
// protocol (each example's main.cpp) calls `server::stream_to` to pipe the client's
// byte_stream into its socket; SIGINT/SIGTERM and the drain; and `run()`, the common main().
//
// Everything runs on one thread (one io_context, run by main): no locks, and the writer never
// writes while a session looks at it.
#ifndef BYTECAST_EXAMPLES_FANOUT_SERVER_HPP
#define BYTECAST_EXAMPLES_FANOUT_SERVER_HPP

#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include "asio_backend.hpp" // asio::, standalone or Boost.Asio
#include "fanout_archive.hpp"
#include "fanout_demand.hpp"
#include "fanout_feed.hpp"
#include "fanout_log.hpp"
#include "fanout_options.hpp"
#include "fanout_wire.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
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
// The server

/// One accepted connection, owned by its session coroutine.
struct client {
  tcp::socket socket;
  std::uint64_t id = 0;
  std::string peer;              // "127.0.0.1:40312", for the log
  bool awaiting_request = false; // set by a protocol while it reads a request: closed at once on shutdown
  const bytecast::byte_stream* stream = nullptr; // while stream_to() pipes the feed to it (for the stats)
  std::uint64_t sent = 0;                        // payload bytes written to its socket
};

namespace detail {

// A JSON string: quotes, backslashes and control characters escaped (other bytes as they are).
inline std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char ch : text) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      constexpr std::string_view hex = "0123456789abcdef";
      out += "\\u00";
      out += hex[static_cast<unsigned char>(ch) >> 4];
      out += hex[static_cast<unsigned char>(ch) & 0xf];
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

} // namespace detail

class server {
 public:
  /// What a protocol does with a new connection; it returns when the connection is done.
  using session = asio::awaitable<void> (*)(server&, client&);

  /// A server of what `source` yields.
  server(asio::io_context& ctx, const options& opts, std::string_view program, std::unique_ptr<feed_source> source)
      : ctx_(ctx),
        opts_(opts),
        log_(program),
        source_(std::move(source)),
        writer_(ctx, opts.writer),
        acceptor_(ctx),
        signals_(ctx, SIGINT, SIGTERM),
        stats_timer_(ctx),
        drain_timer_(ctx),
        accept_retry_(ctx),
        accept_quiet_(ctx) {}

  /// Opens the archive (--archive), listens (printing "listening on ADDR:PORT" on stdout), then
  /// starts the feed, the signal handling and the stats line. Throws bytecast::system_error when
  /// the archive cannot be opened or the address cannot be used.
  void start(session s) {
    if (!opts_.archive.empty()) {
      // Before the feed starts: its stream gets every byte from the first.
      archive_.emplace(ctx_, writer_, opts_.archive, opts_.archive_limit.value_or(0), log_);
      log("archive: every byte to " + archive_->path() + ", through a `wait` stream with " +
          (archive_->limit() == 0 ? std::string("no limit") : "a limit of " + std::to_string(archive_->limit()) + " bytes"));
      asio::co_spawn(ctx_, write_archive(), detached_with_log("archive"));
    }

    const tcp::endpoint wanted(opts_.bind, opts_.port);
    acceptor_.open(wanted.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(wanted);
    acceptor_.listen();
    std::cout << "listening on " << to_text(acceptor_.local_endpoint()) << std::endl; // flushed: tests wait for it

    if (opts_.writer.queue_limit == 0 && opts_.writer.on_overflow != bytecast::overflow_policy::wait)
      log("note: --policy has no effect without --queue-limit: every client's queue is unbounded");

    asio::co_spawn(ctx_, accept_loop(s), detached_with_log("accept loop"));
    if (opts_.lazy)
      gate_.emplace(ctx_, writer_, opts_.idle_grace.value_or(default_idle_grace),
                    std::max<std::size_t>(opts_.wait_for_clients, 1), log_);
    // The feed runs until its source ends, or until shut_down() cancels it through this slot.
    feeding_ = true;
    asio::co_spawn(ctx_, feed(), asio::bind_cancellation_slot(feed_cancel_.slot(), detached_with_log("feed")));
    if (gate_) asio::co_spawn(ctx_, gate_->run(), detached_with_log("--lazy")); // ends when the writer closes
    wait_for_signal();
    if (opts_.stats.count() > 0) print_stats_every_interval();
  }

  /// A new reader of the feed: the retained recent chunks (--replay) first, then everything
  /// written from now on.
  [[nodiscard]] bytecast::byte_stream subscribe() { return writer_.stream(bytecast::replay); }

  /// Pipes `stream` into `c.socket`, each chunk framed by `framing`, and closes the connection:
  /// - the feed ended: every chunk, the framing's trailer, then a graceful close;
  /// - the feed failed: every chunk, then the broken end the framing calls for (see
  ///   fanout_wire.hpp): no trailer and a graceful close, or (raw bytes) a reset;
  /// - the stream was cut off (`disconnect` policy, queue full): an abortive close at once;
  /// - the client went away (or the write failed): close.
  /// Under `drop_oldest` a client that lagged loses the oldest chunks and carries on.
  template <class Framing>
  asio::awaitable<void> stream_to(client& c, bytecast::byte_stream stream, Framing framing) {
    const pipe_result r = co_await pipe(c, std::move(stream), std::move(framing)); // the stream is gone after this
    switch (r.end) {
      case pipe_end::finished:
        log(c, "finished, " + std::to_string(r.sent) + " bytes sent");
        co_await close_gracefully(c.socket);
        break;
      case pipe_end::feed_failed:
        if constexpr (Framing::ends_with_trailer) {
          log(c, "the feed failed: " + std::to_string(r.sent) + " bytes sent, then the end without its trailer");
          co_await close_gracefully(c.socket);
        } else {
          log(c, "the feed failed: " + std::to_string(r.sent) + " bytes sent, then a reset once they are delivered");
          co_await reset_once_delivered(c.socket);
        }
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

  /// The stats as one JSON object, for GET /stats (http_fanout):
  ///   {"bytes_written": 1048576, "streams": 3, "connections": 4, "feed": "running",
  ///    "clients": [{"id": 1, "peer": "127.0.0.1:40312", "policy": "drop_oldest",
  ///                 "queue_limit": 65536, "queued_bytes": 12, "dropped": 0, "sent": 1048564}, ...],
  ///    "archive": {"path": "feed.bin", "policy": "wait", "queue_limit": 0, "queued_bytes": 0,
  ///                "dropped": 0, "written": 1048576}}
  /// `streams` is the writer's stream_count(): the clients' streams and the archive's. `clients`
  /// are the connections that receive the feed now; `sent` counts what went into a client's
  /// socket, so sent + queued_bytes + dropped is bytes_written less the chunk being written
  /// (and less what was written before the client came). `feed`: waiting (for clients), running,
  /// paused (--lazy), ended or failed. `archive` is null without --archive.
  [[nodiscard]] std::string stats_json() const {
    const auto number = [](std::uint64_t n) { return std::to_string(n); };
    const std::string policy = detail::json_string(policy_name(opts_.writer.on_overflow));
    std::string json = "{\"bytes_written\": " + number(writer_.bytes_written()) +
                       ", \"streams\": " + number(writer_.stream_count()) +
                       ", \"connections\": " + number(connections_.size()) +
                       ", \"feed\": " + detail::json_string(feed_state()) + ", \"clients\": [";
    std::vector<const client*> receiving;
    for (const client* c : connections_)
      if (c->stream != nullptr) receiving.push_back(c);
    std::sort(receiving.begin(), receiving.end(), [](const client* a, const client* b) { return a->id < b->id; });
    const char* separator = "";
    for (const client* c : receiving) {
      json += separator;
      separator = ", ";
      json += "{\"id\": " + number(c->id) + ", \"peer\": " + detail::json_string(c->peer) +
              ", \"policy\": " + policy + ", \"queue_limit\": " + number(opts_.writer.queue_limit) +
              ", \"queued_bytes\": " + number(c->stream->queued_bytes()) +
              ", \"dropped\": " + number(c->stream->dropped()) + ", \"sent\": " + number(c->sent) + "}";
    }
    json += "], \"archive\": ";
    if (!archive_) {
      json += "null";
    } else {
      const bytecast::byte_stream* s = archive_->stream();
      json += "{\"path\": " + detail::json_string(archive_->path()) + ", \"policy\": \"wait\", \"queue_limit\": " +
              number(archive_->limit()) + ", \"queued_bytes\": " + number(s ? s->queued_bytes() : 0) +
              ", \"dropped\": " + number(s ? s->dropped() : 0) + ", \"written\": " + number(archive_->written()) + "}";
    }
    return json + "}\n";
  }

  /// The process's exit status once run() returned: 1 when the feed failed or the archive could
  /// not be written, else 0.
  [[nodiscard]] int exit_status() const noexcept { return failure_ || (archive_ && archive_->failed()) ? 1 : 0; }

  /// One line on stderr, prefixed with the program's name.
  void log(std::string_view text) const { log_(text); }
  void log(const client& c, std::string_view text) const {
    log("client " + std::to_string(c.id) + " (" + c.peer + "): " + std::string(text));
  }

 private:
  enum class pipe_end { finished, feed_failed, cut_off, gone };
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
    bool pending = false;                        // a socket write is in progress
    std::chrono::steady_clock::time_point moved; // when it started, or last got bytes out
    std::uint64_t fed_before = 0;                // writer_.bytes_written() when it started
    std::size_t queued_before = 0;               // the stream's queued_bytes() when it started
  };

  [[nodiscard]] std::string_view feed_state() const noexcept {
    if (failure_) return "failed";
    if (stopping_) return "ended";
    if (gate_) return gate_->is_open() ? "running" : gate_->has_opened() ? "paused" : "waiting";
    return waiting_for_clients_ ? "waiting" : "running";
  }

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
    // A shutdown cancels the feed through its slot: every wait below then completes with
    // operation_aborted (or broken_pipe, the writer being closed), and the feed returns. No
    // exception for it: the feed looks at every error itself.
    co_await asio::this_coro::throw_if_cancelled(false);
    log("feed: " + source_->description());
    if (opts_.wait_for_clients > 0 && !gate_) { // --lazy: the gate waits for them
      log("feed: waiting for " + std::to_string(opts_.wait_for_clients) + " clients");
      waiting_for_clients_ = true;
      const bool enough = co_await wait_for_clients(opts_.wait_for_clients);
      waiting_for_clients_ = false;
      if (!enough) co_return; // a signal came first
      log(std::to_string(opts_.wait_for_clients) + " clients connected: the feed starts");
    }
    const bytecast::error_code end = co_await copy_feed();
    feeding_ = false;
    source_.reset(); // closes stdin
    if (stopping_) co_return; // a signal ended it
    const std::string after = " after " + std::to_string(writer_.bytes_written()) + " bytes";
    if (end == asio::error::eof)
      shut_down("feed ended" + after);
    else
      shut_down("feed failed" + after + " (" + end.message() + ")", end);
  }

  // Once `n` clients receive the feed: they subscribed, so each gets it from its first byte on.
  // False when the server shuts down first (the writer is closed: broken_pipe).
  asio::awaitable<bool> wait_for_clients(std::size_t n) {
    const std::size_t others = archive_ ? 1 : 0; // the archive's stream is no client
    bytecast::error_code ec;
    co_await writer_.async_wait_for_streams(n + others, asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec;
  }

  asio::awaitable<void> write_archive() {
    co_await archive_->run();
    maybe_finish(); // the archive may be the last thing the server waited for
  }

  // Each piece of the source becomes one chunk of the writer, until the source ends (eof) or
  // fails (its error), or the server closes the writer (broken_pipe) or cancels the feed.
  asio::awaitable<bytecast::error_code> copy_feed() {
    for (;;) {
      const feed_piece piece = co_await source_->next();
      if (piece.error) co_return piece.error;
      // --lazy: while nobody listens, the feed waits here with its next piece.
      if (gate_ && !co_await gate_->until_open()) co_return asio::error::operation_aborted;
      // async_write, not write: under `wait` it waits until every client has room (and so
      // stops reading stdin: backpressure up the pipe), under the other policies it never waits.
      bytecast::error_code ec;
      co_await writer_.async_write(asio::buffer(piece.bytes.data(), piece.bytes.size()),
                                   asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return ec;
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
    c.stream = &stream; // for the stats, while the pipe runs
    struct forget_stream {
      client& c;
      ~forget_stream() { c.stream = nullptr; }
    } forget{c};
    auto first = [](const auto& winner) { return std::visit([](const ending& e) { return e; }, winner); };
    ending e;
    if (watches_cut_off())
      e = first(co_await (pump(c, stream, framing, progress) || watch_peer(c) || watch_write_timeout(progress) ||
                          watch_cut_off(stream, progress)));
    else
      e = first(co_await (pump(c, stream, framing, progress) || watch_peer(c) || watch_write_timeout(progress)));
    r.sent = c.sent;
    r.end = e.end;
    r.error = e.error;
    r.dropped = stream.dropped();
    co_return r;
  }

  // The most one socket write takes from a client's queue (API.md section 8's batches): enough
  // for a few large chunks, or hundreds of small ones in one system call.
  static constexpr std::size_t max_batch_bytes = 256 * 1024;

  // The reader loop for sockets: take everything queued (up to max_batch_bytes) as one batch,
  // wait only when nothing is, and write the batch with one gathered write.
  template <class Framing>
  asio::awaitable<ending> pump(client& c, bytecast::byte_stream& stream, Framing& framing, write_progress& progress) {
    bytecast::error_code ec;
    bool lagged = false;
    for (;;) {
      batch chunks = stream.try_next_batch(max_batch_bytes, ec);
      if (ec == asio::error::would_block)
        chunks = co_await stream.async_next_batch(max_batch_bytes, asio::redirect_error(asio::use_awaitable, ec));
      // The writer's close reason, once everything before it was delivered. It may be `lagged`
      // itself (a Redis feed with a gap): told apart from a drop_oldest lag by the empty queue,
      // as a drop only makes room for a chunk that is then queued, and a closed writer writes none.
      if (failure_ && ec == failure_ && (ec != bytecast::error::lagged || stream.queued_chunks() == 0))
        co_return ending{pipe_end::feed_failed, ec};
      if (ec == bytecast::error::lagged) {
        // drop_oldest: this client was too slow and lost its oldest chunks; the rest follows.
        ++lagged_events_;
        if (!std::exchange(lagged, true)) log(c, "lagged: its oldest chunks were dropped");
        continue;
      }
      if (ec == bytecast::error::overflowed) co_return ending{pipe_end::cut_off, ec};
      if (ec) co_return ending{pipe_end::gone, ec}; // operation_aborted: a watch finished first
      if (chunks.empty()) break;                    // the close sentinel: the feed ended

      // The batch stays valid until the next read on the stream, so for the whole write.
      progress.fed_before = writer_.bytes_written(); // for watch_cut_off
      progress.queued_before = stream.queued_bytes();
      ec = co_await write_noting_progress(c.socket, framing.frame(chunks), progress);
      if (ec) co_return ending{pipe_end::gone, ec};
      c.sent += asio::buffer_size(chunks);
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
  // stuck in a socket write and never reads again. So while a socket write is pending, this
  // watch compares what the writer wrote since that write started with what reached the
  // stream's queue since: the pump takes nothing meanwhile, so each write grows the queue by its
  // size unless it did not reach the stream, which under `disconnect` means the stream was cut
  // off. Exact here: the writer runs on this same thread, and the pump noted both numbers when
  // it started the socket write. (Compared from one look to the next instead, a cut-off at the
  // end of a burst went unnoticed while the feed was quiet.)
  asio::awaitable<ending> watch_cut_off(const bytecast::byte_stream& stream, const write_progress& progress) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
      timer.expires_after(cut_off_check_interval);
      bytecast::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return ending{pipe_end::gone, ec}; // cancelled: the pump or the peer watch finished first
      if (!progress.pending) continue;
      const std::uint64_t fed = writer_.bytes_written() - progress.fed_before;
      const std::size_t queued_now = stream.queued_bytes();
      if (queued_now >= progress.queued_before && queued_now - progress.queued_before < fed)
        co_return ending{pipe_end::cut_off, bytecast::error::overflowed};
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
  // without it a client that never reads would keep the server running for ever. `failure`:
  // why the feed failed; every client then gets its queue, then a broken end instead of a clean one.
  void shut_down(const std::string& why, const bytecast::error_code& failure = {}) {
    stopping_ = true;
    failure_ = failure;
    log(why + "; " + std::to_string(connections_.size()) + " clients have " + std::to_string(opts_.drain.count()) +
        " ms to drain");
    stop_accepting();
    close_awaiting_request();
    // Every client gets what is queued for it, then the end: the close sentinel, or `failure`
    // (close({}) is close()). Wakes a feed that waits for room or for clients.
    writer_.close(failure_);
    if (feeding_) feed_cancel_.emit(asio::cancellation_type::terminal); // a signal: the feed stops now
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

  // Once the feed ended, the last connection is gone and the archive is complete, nothing else
  // may keep run() going.
  void maybe_finish() {
    if (finished_ || writer_.is_open() || acceptor_.is_open() || !connections_.empty()) return;
    if (archive_ && !archive_->done()) return; // it writes its queue to the file
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
  static constexpr auto accept_quiet_time = 2s; // without a failed accept: the episode is over

  asio::io_context& ctx_;
  const options opts_;
  const logger log_;
  std::unique_ptr<feed_source> source_; // until the feed ends
  asio::cancellation_signal feed_cancel_;
  bool feeding_ = false; // the feed coroutine runs
  bytecast::byte_writer writer_;
  std::optional<archive> archive_; // --archive: one more stream of writer_
  std::optional<demand_gate> gate_; // --lazy
  tcp::acceptor acceptor_;
  asio::signal_set signals_;
  asio::steady_timer stats_timer_;
  asio::steady_timer drain_timer_;
  asio::steady_timer accept_retry_; // the accept loop's back-off when accepts fail
  asio::steady_timer accept_quiet_; // ends an episode of failed accepts
  struct {
    std::uint64_t failures = 0; // 0: no episode
    std::string why;            // the first failure's message
    std::chrono::steady_clock::time_point first, last;
  } accept_trouble_; // the episode of failed accepts going on, for the log
  std::set<client*> connections_; // every open connection, for close_all()
  std::uint64_t last_id_ = 0;
  std::uint64_t cut_off_ = 0;
  std::uint64_t lagged_events_ = 0;
  bool waiting_for_clients_ = false; // --wait-for-clients: the feed has not started
  bool stopping_ = false; // shutting down: the feed ended, or a signal came
  bytecast::error_code failure_; // why the feed failed; the writer's close reason
  bool finished_ = false; // the feed ended and every connection is gone
  std::string last_stats_;
};

/// The common main(): options, the feed's source, one io_context on this thread, run until
/// everything is done. Exit status 2 for bad options or a closed stdin, 1 when the server
/// cannot start, the feed failed or the archive could not be written, else 0.
inline int run(int argc, char** argv, std::string_view program, std::string_view summary, server::session s) {
  const options opts = parse_options(argc, argv, program, summary);

  // The feed's source is settled before the io_context exists: the context opens descriptors
  // of its own (epoll, an eventfd, a timerfd), and with fd 0 closed (`server <&-`) the first
  // of them would become "stdin", and its bytes the feed.
  int feed_fd = -1; // -1: the generated feed
  if (!opts.generate && opts.redis.empty()) {
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

  if (opts.lazy && feed_fd >= 0)
    detail::usage_error(program, summary, "--lazy needs the generated feed: add --generate (stdin is not a terminal)");

  std::signal(SIGPIPE, SIG_IGN); // a closed stdout must not kill the server
  try {
    asio::io_context ctx;
    server srv(ctx, opts, program, make_feed_source(ctx, opts, feed_fd, program));
    srv.start(s);
    ctx.run();
    return srv.exit_status();
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << '\n';
    return 1;
  }
}

} // namespace fanout

#endif // BYTECAST_EXAMPLES_FANOUT_SERVER_HPP
