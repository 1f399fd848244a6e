// --archive: every byte of the feed into a file, through one more stream of the server's writer.
//
// One writer serves readers with different needs (bytecast::stream_options): the archive's
// stream is `wait`, so it gets every byte, and when it is bounded (--archive-limit) a slow disk
// holds the feed back; the clients' streams keep --policy, so a client that falls behind loses
// chunks or is cut off, and never holds the feed back.
#ifndef BYTECAST_EXAMPLES_FANOUT_ARCHIVE_HPP
#define BYTECAST_EXAMPLES_FANOUT_ARCHIVE_HPP

#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include "asio_backend.hpp" // asio::, standalone or Boost.Asio
#include "fanout_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>

namespace fanout {

class archive {
 public:
  /// Creates (or truncates) the file `path` (or opens the pipe) and subscribes to `writer`: every
  /// byte written from now on goes to the file. `limit`: the stream's queue limit, 0 = unbounded. Throws
  /// bytecast::system_error when the file cannot be opened.
  archive(asio::io_context& ctx, bytecast::byte_writer& writer, std::string path, std::size_t limit, const logger& log)
      : path_(std::move(path)), limit_(limit), log_(log), file_(ctx, open(path_)),
        stream_(writer.stream({.queue_limit = limit, .on_overflow = bytecast::overflow_policy::wait})) {}

  /// Writes what the stream delivers to the file until the writer closes (at the feed's end, its
  /// failure or a signal: the archive holds everything written before), then flushes it to disk
  /// (fsync) and closes it. A failed write ends the archive early: its stream goes, so that it
  /// holds nothing back, and failed() says so.
  asio::awaitable<void> run() {
    constexpr std::size_t max_batch_bytes = 1024 * 1024;
    bytecast::error_code ec;
    for (;;) {
      // Everything queued (up to 1 MiB) in one gathered write.
      std::span<const asio::const_buffer> chunks = stream_->try_next_batch(max_batch_bytes, ec);
      if (ec == asio::error::would_block)
        chunks = co_await stream_->async_next_batch(max_batch_bytes, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || chunks.empty()) break; // the writer closed: the sentinel, or its close reason
      co_await asio::async_write(file_, chunks, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        fail("writing", ec);
        break;
      }
      written_ += asio::buffer_size(chunks);
    }
    stream_.reset();
    // fsync: the bytes of a regular file reach the disk before the server exits. A pipe (say,
    // `--archive >(gzip > feed.gz)`) has nothing to flush: EINVAL.
    bool flushed = false;
    if (!failed_) {
      flushed = ::fsync(file_.native_handle()) == 0;
      if (!flushed && errno != EINVAL) fail("flushing", error_from_errno());
    }
    file_.close(ec);
    if (!failed_ && ec) fail("closing", ec);
    if (!failed_) log_("archive: " + std::to_string(written_) + " bytes in " + path_ + (flushed ? ", flushed to disk" : ""));
    done_ = true;
  }

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }
  /// Bytes in the file so far.
  [[nodiscard]] std::uint64_t written() const noexcept { return written_; }
  /// Its stream, until run() ends; for the stats.
  [[nodiscard]] const bytecast::byte_stream* stream() const noexcept { return stream_ ? &*stream_ : nullptr; }
  /// run() has ended: the file is complete (or failed() is true).
  [[nodiscard]] bool done() const noexcept { return done_; }
  [[nodiscard]] bool failed() const noexcept { return failed_; }

 private:
  static int open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) throw bytecast::system_error(error_from_errno(), "--archive " + path);
    return fd;
  }

  static bytecast::error_code error_from_errno() { return {errno, asio::error::get_system_category()}; }

  void fail(const std::string& doing, const bytecast::error_code& ec) {
    failed_ = true;
    log_("archive: " + doing + " " + path_ + " failed after " + std::to_string(written_) + " bytes (" + ec.message() +
         "); the archive is incomplete, the clients go on");
  }

  std::string path_;
  std::size_t limit_;
  const logger& log_;
  // A regular file, whose writes Asio makes at once (epoll refuses regular files, and their
  // writes never wait for long), or a pipe, whose writes wait for room through epoll.
  asio::posix::stream_descriptor file_;
  std::optional<bytecast::byte_stream> stream_;
  std::uint64_t written_ = 0;
  bool failed_ = false;
  bool done_ = false;
};

} // namespace fanout

#endif // BYTECAST_EXAMPLES_FANOUT_ARCHIVE_HPP
