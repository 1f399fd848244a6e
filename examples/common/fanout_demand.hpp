// --lazy: a feed that runs only while someone listens, driven by the writer's demand waits
// (async_wait_for_streams, async_wait_no_streams).
#ifndef BYTECAST_EXAMPLES_FANOUT_DEMAND_HPP
#define BYTECAST_EXAMPLES_FANOUT_DEMAND_HPP

#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include "asio_backend.hpp" // asio::, standalone or Boost.Asio
#include "fanout_log.hpp"

#include <chrono>
#include <cstddef>
#include <sstream>
#include <string>

namespace fanout {

using namespace asio::experimental::awaitable_operators;

/// A gate in front of the writer: the feed writes only while it is open. run() opens it once
/// `first` streams are live (later: one), and closes it when none has been live for `grace`; a
/// stream that comes within the grace keeps it open. Logs "feed: started" and "feed: paused".
class demand_gate {
 public:
  demand_gate(asio::io_context& ctx, bytecast::byte_writer& writer, double grace_seconds, std::size_t first,
              const logger& log)
      : writer_(writer),
        grace_(std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(grace_seconds))),
        first_(first),
        log_(log),
        grace_timer_(ctx),
        opened_(ctx) {
    std::ostringstream text;
    text << grace_seconds << " s";
    grace_text_ = text.str();
  }

  /// Opens and closes the gate as streams come and go, until the writer closes.
  asio::awaitable<void> run() {
    std::size_t wanted = first_;
    log_("feed: waiting for " + (wanted == 1 ? std::string("a client") : std::to_string(wanted) + " clients") +
         " (--lazy)");
    while (co_await streams_come(wanted)) {
      wanted = 1;
      set_open(true);
      log_("feed: started");
      if (!co_await streams_gone_for_grace()) break;
      set_open(false);
      log_("feed: paused after " + std::to_string(writer_.bytes_written()) + " bytes: no client for " + grace_text_);
    }
    set_open(false); // the writer closed: wakes a feed that waits in until_open(), to give up
  }

  /// The feed may write.
  [[nodiscard]] bool is_open() const noexcept { return open_; }
  /// The gate opened at least once: when closed, the feed is paused (not waiting for its start).
  [[nodiscard]] bool has_opened() const noexcept { return has_opened_; }

  /// Returns at once while the gate is open, else once it opens: true. False when the writer
  /// closed first (the server shuts down, or cancelled the wait).
  asio::awaitable<bool> until_open() {
    while (!open_) {
      if (!writer_.is_open()) co_return false;
      // A timer that never expires is the event: set_open() cancels it, which wakes this wait.
      // One thread runs everything, so no change slips in between the look and the wait.
      bytecast::error_code ec;
      opened_.expires_at(std::chrono::steady_clock::time_point::max());
      co_await opened_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    co_return true;
  }

 private:
  // Once `n` streams are live: true; false when the writer closed first (broken_pipe).
  asio::awaitable<bool> streams_come(std::size_t n) {
    bytecast::error_code ec;
    co_await writer_.async_wait_for_streams(n, asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec;
  }

  // Once no stream has been live for the grace period: true; false when the writer closed first.
  asio::awaitable<bool> streams_gone_for_grace() {
    for (;;) {
      bytecast::error_code ec;
      co_await writer_.async_wait_no_streams(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return false;
      log_("feed: no client left; pausing in " + grace_text_ + " unless one comes");
      grace_timer_.expires_after(grace_);
      bytecast::error_code timer_ec, stream_ec; // the loser of || is cancelled: operation_aborted
      auto first = co_await (grace_timer_.async_wait(asio::redirect_error(asio::use_awaitable, timer_ec)) ||
                             writer_.async_wait_for_streams(1, asio::redirect_error(asio::use_awaitable, stream_ec)));
      if (first.index() == 0) co_return true; // the grace period is over
      if (stream_ec) co_return false;          // broken_pipe: the writer closed
      log_("feed: a client came within the grace period; the feed goes on");
    }
  }

  void set_open(bool open) {
    open_ = open;
    has_opened_ = has_opened_ || open;
    opened_.cancel();
  }

  bytecast::byte_writer& writer_;
  std::chrono::steady_clock::duration grace_;
  std::string grace_text_; // "5 s", for the log
  std::size_t first_;
  const logger& log_;
  asio::steady_timer grace_timer_;
  asio::steady_timer opened_; // the event until_open() waits for
  bool open_ = false;
  bool has_opened_ = false;
};

} // namespace fanout

#endif // BYTECAST_EXAMPLES_FANOUT_DEMAND_HPP
