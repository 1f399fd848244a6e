// tcp_fanout: one live byte feed (stdin, or generated lines) broadcast as raw bytes to every TCP
// client. Each client gets its own bytecast::byte_stream, piped into its socket with
// asio::async_write; when the feed ends, every client receives what is queued for it, then the
// server closes its side (the client reads EOF). Everything else (options, the feed, signals,
// the pump) lives in ../common/fanout_*.hpp, shared with http_fanout.
#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include "common/fanout_server.hpp"

namespace {

// A TCP client needs no handshake: it gets a stream as soon as it is accepted.
asio::awaitable<void> serve(fanout::server& server, fanout::client& c) {
  co_await server.stream_to(c, server.subscribe(), fanout::raw_framing{});
}

} // namespace

int main(int argc, char** argv) {
  return fanout::run(argc, argv, "tcp_fanout",
                     "Broadcasts one live byte feed to every TCP client, as raw bytes.", serve);
}
