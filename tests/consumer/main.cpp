// A first bytecast program: one writer, one stream, "hi", close, read it back in a coroutine.
// Exits 0 when the stream delivered exactly "hi" and then the close sentinel.
#include <bytecast/bytecast.hpp>

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

int main() {
  asio::io_context ctx;
  bytecast::byte_writer w{ctx};
  auto s = w.stream();
  w.write(std::string_view{"hi"});
  w.close();

  std::string received;
  bool closed = false;
  bool failed = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto bytes = co_await s.async_next(asio::use_awaitable);
          if (bytes.empty()) {  // the close sentinel
            closed = true;
            co_return;
          }
          received.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        }
      },
      [&](std::exception_ptr e) { failed = e != nullptr; });
  ctx.run();

  if (failed || !closed || received != "hi") {
    std::fprintf(stderr, "consumer: FAILED (received '%s', closed=%d, exception=%d)\n",
                 received.c_str(), closed, failed);
    return 1;
  }
  std::puts("consumer: received 'hi' and the close sentinel");
  return 0;
}
