// On the wire: how the feed's chunks are framed for a client (raw, or HTTP/1.1 chunked), and
// the ways a connection ends (gracefully, with a FIN; abortively, with a reset).
#ifndef BYTECAST_EXAMPLES_FANOUT_WIRE_HPP
#define BYTECAST_EXAMPLES_FANOUT_WIRE_HPP

#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include "asio_backend.hpp" // asio::, standalone or Boost.Asio

#include <sys/ioctl.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <span>
#include <vector>

namespace fanout {

using asio::ip::tcp;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

// ---------------------------------------------------------------------------------------------
// Framing: what goes around each chunk on the wire
//
// A framing's `ends_with_trailer` says how a client tells a clean end from a broken one (the
// feed failed). With a trailer (HTTP chunked: the last-chunk) the trailer is the clean end, and
// a broken one is the FIN without it. Without (raw bytes), the FIN is the clean end, and a broken
// one is a reset.

/// A batch as the stream hands it out (`async_next_batch`): the queued chunks, oldest first.
using batch = std::span<const asio::const_buffer>;

/// Raw bytes, as written (tcp_fanout; http_fanout for HTTP/1.0 clients): the batch itself.
struct raw_framing {
  static constexpr bool ends_with_trailer = false;
  [[nodiscard]] batch frame(batch chunks) const { return chunks; }
  [[nodiscard]] asio::const_buffer trailer() const { return {}; }
};

/// One HTTP/1.1 chunk per batch (a size line, the batch's chunks, CRLF), then the last-chunk
/// `0\r\n\r\n` (http_fanout). The buffer list is kept between batches: no allocation once it
/// has grown to the longest batch.
class chunked_framing {
 public:
  static constexpr bool ends_with_trailer = true;
  [[nodiscard]] const std::vector<asio::const_buffer>& frame(batch chunks) {
    auto [end, ec] = std::to_chars(size_line_.data(), size_line_.data() + size_line_.size() - 2,
                                   asio::buffer_size(chunks), 16);
    (void)ec; // 16 hex digits always fit
    *end++ = '\r';
    *end++ = '\n';
    buffers_.clear();
    buffers_.push_back(asio::buffer(size_line_.data(), static_cast<std::size_t>(end - size_line_.data())));
    buffers_.insert(buffers_.end(), chunks.begin(), chunks.end());
    buffers_.push_back(asio::buffer(crlf, 2));
    return buffers_;
  }
  [[nodiscard]] asio::const_buffer trailer() const { return asio::buffer(last_chunk, 5); }

 private:
  static constexpr const char* crlf = "\r\n";
  static constexpr const char* last_chunk = "0\r\n\r\n";
  std::array<char, 20> size_line_{};
  std::vector<asio::const_buffer> buffers_;
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

/// The broken end for raw bytes: a reset, so that the client can tell it from a clean end (a
/// FIN), but only once the peer has acknowledged every byte sent (a reset discards what is still
/// unsent, and the client should get everything before the break). Until then it looks every
/// 10 ms at what is unacknowledged (TIOCOUTQ, Linux); a client that takes nothing keeps it
/// waiting until the socket is closed from elsewhere (the drain time).
inline asio::awaitable<void> reset_once_delivered(tcp::socket& socket) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    int unacknowledged = 0;
    if (!socket.is_open() || ::ioctl(socket.native_handle(), TIOCOUTQ, &unacknowledged) != 0 || unacknowledged == 0)
      break;
    bytecast::error_code ec;
    timer.expires_after(10ms);
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
  }
  close_abortively(socket);
}

} // namespace fanout

#endif // BYTECAST_EXAMPLES_FANOUT_WIRE_HPP
