// bytecast_net_fanout: the network fan-out workload (issue 15, item 5), one role per process.
//
//   bytecast_net_fanout server --clients N --chunk C --total-bytes T [--port P] [--no-batch]
//     A fan-out server on 127.0.0.1: it accepts N TCP clients, then an in-process producer writes
//     T bytes in chunks of C bytes into one byte_writer as fast as the clients take them (a
//     bounded `wait` writer: co_await async_write), and one coroutine per client pipes its
//     byte_stream into its socket: each batch of queued chunks (async_next_batch, up to 1 MiB)
//     with one gathered async_write, or, with --no-batch, one async_write per chunk. One
//     thread. It prints "listening PORT" once it listens, and at exit one JSON line with its CPU
//     time (user + system) and the bytes it sent.
//
//   bytecast_net_fanout client --clients N --port P --chunk C --total-bytes T
//     N TCP connections from ONE thread (one io_context, a fixed 256 KiB read buffer each),
//     reading until each connection ends. Every connection must get exactly T bytes, and the
//     first byte of every read must be its chunk's (chunk i is filled with i % 251): cheap enough
//     that the client stays out of the way of the server it measures. Prints one JSON line:
//     bytes, seconds from the first read to the last end, and the aggregate bytes/s.
//
// benchmarks/run_net.py runs both, and iperf3 for the machine's limit of the same shape.
#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using asio::ip::tcp;
using asio::use_awaitable;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "bytecast_net_fanout: %s\n", what.c_str());
  std::exit(1);
}

std::uint64_t parse_size(std::string_view text) {
  std::uint64_t unit = 1;
  if (!text.empty() && (text.back() == 'K' || text.back() == 'k')) unit = 1ull << 10;
  if (!text.empty() && (text.back() == 'M' || text.back() == 'm')) unit = 1ull << 20;
  if (!text.empty() && (text.back() == 'G' || text.back() == 'g')) unit = 1ull << 30;
  if (unit != 1) text.remove_suffix(1);
  char* end = nullptr;
  const std::string s(text);
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0') fail("not a size: " + s);
  return v * unit;
}

struct options {
  std::string role;
  std::uint64_t clients = 1;
  std::uint64_t chunk = 65536;
  std::uint64_t total = 1ull << 30;
  std::uint16_t port = 0;
  bool batch = true;
};

options parse(int argc, char** argv) {
  options o;
  if (argc < 2) fail("usage: bytecast_net_fanout server|client [--clients N] [--chunk C] [--total-bytes T] [--port P] [--no-batch]");
  o.role = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string_view flag = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 == argc) fail(std::string(flag) + " needs a value");
      return argv[++i];
    };
    if (flag == "--clients") o.clients = parse_size(value());
    else if (flag == "--chunk") o.chunk = parse_size(value());
    else if (flag == "--total-bytes") o.total = parse_size(value());
    else if (flag == "--port") o.port = static_cast<std::uint16_t>(parse_size(value()));
    else if (flag == "--no-batch") o.batch = false;
    else fail("unknown option " + std::string(flag));
  }
  if (o.role != "server" && o.role != "client") fail("the role is server or client");
  if (o.chunk == 0 || o.total % o.chunk != 0) fail("--total-bytes must be a multiple of --chunk");
  return o;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// --- server ----------------------------------------------------------------------------------------

constexpr std::size_t max_batch = std::size_t{1} << 20;

asio::awaitable<void> pipe(bytecast::byte_stream s, tcp::socket socket, bool batch, std::uint64_t& sent) {
  for (;;) {
    if (batch) {
      auto buffers = co_await s.async_next_batch(max_batch, use_awaitable);
      if (buffers.empty()) break;
      sent += co_await asio::async_write(socket, buffers, use_awaitable);
    } else {
      auto b = co_await s.next();
      if (b.empty()) break;
      sent += co_await asio::async_write(socket, asio::buffer(b.data(), b.size()), use_awaitable);
    }
  }
  socket.shutdown(tcp::socket::shutdown_send);
}

int run_server(const options& o) {
  asio::io_context ctx(1);
  tcp::acceptor acceptor(ctx, {asio::ip::address_v4::loopback(), o.port});
  std::printf("listening %u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
  std::fflush(stdout);
  // Each client may hold 4 MiB (or 4 chunks) beyond what its socket took: the producer waits
  // for the slowest one, so the run measures delivery, not queueing.
  bytecast::byte_writer writer(ctx, {.queue_limit = std::max<std::uint64_t>(4 << 20, 4 * o.chunk)});
  std::uint64_t sent = 0;
  double cpu_start = 0;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (std::uint64_t i = 0; i < o.clients; ++i) {
          tcp::socket socket = co_await acceptor.async_accept(use_awaitable);
          socket.set_option(tcp::no_delay(true));
          asio::co_spawn(ctx, pipe(writer.stream(), std::move(socket), o.batch, sent), asio::detached);
        }
        acceptor.close();
        cpu_start = cpu_seconds();
        std::vector<std::byte> data(o.chunk);
        for (std::uint64_t off = 0; off < o.total; off += o.chunk) {
          std::memset(data.data(), static_cast<int>((off / o.chunk) % 251), data.size());
          // As fast as the clients take it: write at once while every queue has room, wait only
          // when one is full (an async_write per chunk would give way to the clients after every
          // chunk, and they would each send one chunk per system call).
          bytecast::error_code ec;
          writer.write(std::span<const std::byte>(data), ec);
          if (ec == asio::error::would_block) co_await writer.async_write(asio::buffer(data), use_awaitable);
          else if (ec) throw bytecast::system_error(ec, "write");
        }
        writer.close();
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  ctx.run();
  std::printf("{\"role\":\"server\",\"clients\":%" PRIu64 ",\"chunk\":%" PRIu64 ",\"batch\":%s,\"sent_bytes\":%" PRIu64
              ",\"cpu_seconds\":%.6f}\n",
              o.clients, o.chunk, o.batch ? "true" : "false", sent, cpu_seconds() - cpu_start);
  if (sent != o.clients * o.total) fail("the server sent " + std::to_string(sent) + " bytes, not clients x total");
  return 0;
}

// --- client ----------------------------------------------------------------------------------------

asio::awaitable<void> receive(tcp::socket& socket, std::uint64_t chunk, std::uint64_t& got) {
  std::vector<char> buf(256 * 1024);
  for (;;) {
    std::error_code ec;
    const std::size_t n = co_await socket.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
    if (n != 0 && static_cast<unsigned char>(buf[0]) != (got / chunk) % 251) fail("a read's first byte is not its chunk's");
    got += n;
    if (ec == asio::error::eof) break;
    if (ec) fail("read: " + ec.message());
  }
}

int run_client(const options& o) {
  asio::io_context ctx(1);
  std::vector<tcp::socket> sockets;
  for (std::uint64_t i = 0; i < o.clients; ++i) {
    sockets.emplace_back(ctx);
    sockets.back().connect({asio::ip::address_v4::loopback(), o.port});
  }
  std::vector<std::uint64_t> got(o.clients, 0);
  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < o.clients; ++i)
    asio::co_spawn(ctx, receive(sockets[i], o.chunk, got[i]), asio::detached);
  ctx.run();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::uint64_t total = 0;
  for (std::uint64_t i = 0; i < o.clients; ++i) {
    if (got[i] != o.total) fail("client " + std::to_string(i) + " got " + std::to_string(got[i]) + " bytes");
    total += got[i];
  }
  std::printf("{\"role\":\"client\",\"clients\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"seconds\":%.6f,\"bytes_per_s\":%.0f}\n",
              o.clients, total, seconds, static_cast<double>(total) / seconds);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  return o.role == "server" ? run_server(o) : run_client(o);
}
