// Where the feed's bytes come from: the feed_source interface, and its two sources, stdin and
// generated lines. A new source (a socket, a message queue) is one more class deriving from
// feed_source and one more branch in make_feed_source().
#ifndef BYTECAST_EXAMPLES_FANOUT_FEED_HPP
#define BYTECAST_EXAMPLES_FANOUT_FEED_HPP

#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include "asio_backend.hpp" // asio::, standalone or Boost.Asio
#include "fanout_options.hpp"

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace fanout {

/// What a source hands the server at a time: bytes, which the server writes as ONE chunk (so
/// a source decides the chunking every client sees), or why there are no more.
struct feed_piece {
  bytecast::error_code error;       // asio::error::eof: the feed's clean end; anything else: it failed
  std::span<const std::byte> bytes; // valid until the next call of next()
};

/// A source of the feed. The server calls next() until it returns an error, one call at a time,
/// on the io_context's thread. When the server shuts down it cancels the pending call through
/// the coroutine's cancellation slot: every Asio operation the source awaits completes with
/// asio::error::operation_aborted, and next() returns that.
class feed_source {
 public:
  virtual ~feed_source() = default;

  /// For the log: "feed: stdin".
  [[nodiscard]] virtual std::string description() const = 0;

  /// The next piece of the feed.
  virtual asio::awaitable<feed_piece> next() = 0;
};

/// stdin, or rather a dup of it (see run()), in pieces of what one read returns (at most 64 KiB).
/// A stream_descriptor works for pipes, terminals and sockets, and (by plain reads, never
/// through epoll) for regular files.
class stdin_source final : public feed_source {
 public:
  stdin_source(asio::io_context& ctx, int fd) : input_(ctx, fd), buffer_(64 * 1024) {}

  [[nodiscard]] std::string description() const override { return "stdin"; }

  asio::awaitable<feed_piece> next() override {
    bytecast::error_code ec;
    const std::size_t n = co_await input_.async_read_some(asio::buffer(buffer_), asio::redirect_error(asio::use_awaitable, ec));
    co_return feed_piece{ec, std::span(buffer_.data(), ec ? 0 : n)};
  }

 private:
  asio::posix::stream_descriptor input_;
  std::vector<std::byte> buffer_;
};

/// "line 000001\n", "line 000002\n", ... at `rate` lines per second (0: no pause), `count` of
/// them (0: no end).
class generated_source final : public feed_source {
 public:
  generated_source(asio::io_context& ctx, double rate, std::uint64_t count)
      : rate_(rate),
        count_(count),
        period_(rate > 0 ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(1.0 / rate))
                         : std::chrono::steady_clock::duration::zero()),
        timer_(ctx) {}

  [[nodiscard]] std::string description() const override {
    std::ostringstream what;
    what << "generated lines, ";
    if (rate_ > 0) what << rate_ << " per second"; else what << "no pause";
    if (count_ > 0) what << ", " << count_ << " in total";
    return what.str();
  }

  asio::awaitable<feed_piece> next() override {
    if (count_ != 0 && line_ > count_) co_return feed_piece{asio::error::eof, {}};
    if (line_ > 1) {
      // On schedule: wait only when ahead of it. A timer wakes up late by some microseconds,
      // so at high rates the lines due meanwhile go out at once; but after a stall (a `wait`
      // writer waiting for room) the schedule starts again from now, with no burst to catch up.
      next_ += period_;
      const auto now = std::chrono::steady_clock::now();
      if (now - next_ > max_catch_up) next_ = now;
      if (next_ > now) {
        bytecast::error_code ec;
        timer_.expires_at(next_);
        co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return feed_piece{ec, {}}; // cancelled: the server shuts down
      }
    } else {
      next_ = std::chrono::steady_clock::now();
    }
    const int len = std::snprintf(text_.data(), text_.size(), "line %06llu\n", static_cast<unsigned long long>(line_++));
    co_return feed_piece{{}, std::as_bytes(std::span(text_.data(), static_cast<std::size_t>(len)))};
  }

 private:
  static constexpr auto max_catch_up = std::chrono::milliseconds(100); // a longer delay is a stall

  double rate_;
  std::uint64_t count_;
  std::chrono::steady_clock::duration period_;
  asio::steady_timer timer_;
  std::chrono::steady_clock::time_point next_; // when the next line is due
  std::uint64_t line_ = 1;                     // the number of the next line
  std::array<char, 32> text_{};
};

/// --fail-after: another source that fails after `limit` bytes (the piece that crosses the limit
/// is cut there), as a disk or a network would: for tests of what clients see when a feed breaks.
class failing_source final : public feed_source {
 public:
  failing_source(std::unique_ptr<feed_source> inner, std::uint64_t limit) : inner_(std::move(inner)), left_(limit) {}

  [[nodiscard]] std::string description() const override {
    return inner_->description() + ", failing after " + std::to_string(left_ + passed_) + " bytes (--fail-after)";
  }

  asio::awaitable<feed_piece> next() override {
    if (left_ == 0) co_return feed_piece{bytecast::error_code(EIO, asio::error::get_system_category()), {}};
    feed_piece piece = co_await inner_->next();
    if (piece.bytes.size() > left_) piece.bytes = piece.bytes.first(static_cast<std::size_t>(left_));
    left_ -= piece.bytes.size();
    passed_ += piece.bytes.size();
    co_return piece;
  }

 private:
  std::unique_ptr<feed_source> inner_;
  std::uint64_t left_;       // bytes it still lets through
  std::uint64_t passed_ = 0; // bytes it let through
};

} // namespace fanout

#if defined(BYTECAST_EXAMPLES_WITH_REDIS)
#include "redis_source.hpp"
#endif

namespace fanout {

/// The feed's source as the options say: a Redis Stream (--redis), stdin when `stdin_fd` is a
/// descriptor (the source closes it), else the generated lines; failing after --fail-after
/// bytes if given.
[[nodiscard]] inline std::unique_ptr<feed_source> make_feed_source(asio::io_context& ctx, const options& opts, int stdin_fd,
                                                                   [[maybe_unused]] std::string_view program) {
  std::unique_ptr<feed_source> source;
#if defined(BYTECAST_EXAMPLES_WITH_REDIS)
  if (!opts.redis.empty())
    source = std::make_unique<redis_source>(ctx, opts, program);
  else
#endif
  if (stdin_fd >= 0)
    source = std::make_unique<stdin_source>(ctx, stdin_fd);
  else
    source = std::make_unique<generated_source>(ctx, opts.rate, opts.count);
  if (opts.fail_after) source = std::make_unique<failing_source>(std::move(source), *opts.fail_after);
  return source;
}

} // namespace fanout

#endif // BYTECAST_EXAMPLES_FANOUT_FEED_HPP
