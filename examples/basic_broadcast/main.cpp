// basic_broadcast: one writer, three readers; every reader gets every chunk, in order,
// then the empty close sentinel. The C++ counterpart of stream_utils' ByteWriter/ByteStream.
#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include "common/asio_backend.hpp" // asio::, standalone or Boost.Asio

#include <array>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>

constexpr int reader_count = 3;

// Readers report on `acks` (another bytecast writer) when they are ready and after
// each chunk, so the writer proceeds in lock-step and the output always reads in
// the same order. A real program would not need this: readers are independent.
asio::awaitable<void> wait_for_acks(bytecast::byte_stream& acks) {
  for (int i = 0; i < reader_count; ++i) co_await acks.next();
}

asio::awaitable<void> read_all(int n, bytecast::byte_stream stream, bytecast::byte_writer& acks) {
  std::cout << "[Stream " << n << "] Starting to read...\n";
  acks.write("ready");

  std::size_t chunks = 0;
  std::size_t total = 0;
  for (;;) {
    std::span<const std::byte> bytes = co_await stream.next();
    if (bytes.empty()) break; // the close sentinel: the writer is done

    ++chunks;
    total += bytes.size();
    std::ostringstream line;
    line << "[Stream " << n << "] Received chunk " << chunks << ": " << bytes.size() << " bytes";
    if (n == 1) line << " - '" << std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()) << "'";
    std::cout << line.str() << '\n';
    acks.write("done");
  }

  std::ostringstream end;
  end << "\n[Stream " << n << "] Received close signal\n"
      << "[Stream " << n << "] Finished: " << chunks << " chunks, " << total << " total bytes\n";
  std::cout << end.str();
}

asio::awaitable<void> write_all(bytecast::byte_writer& writer, bytecast::byte_stream acks) {
  constexpr std::array<std::pair<std::string_view, std::string_view>, 3> messages{{
      {"first", "Hello, World!"},
      {"second", "Broadcast message to all streams!"},
      {"third", "Final message before closing."},
  }};

  co_await wait_for_acks(acks); // every reader is waiting
  for (auto [ordinal, text] : messages) {
    std::cout << "[Writer] Writing " << ordinal << " message...\n";
    writer.write(text);
    co_await wait_for_acks(acks); // every reader printed this chunk
  }
  std::cout << "[Writer] Total bytes written: " << writer.bytes_written() << "\n\n";

  std::cout << "[Writer] Closing writer...\n";
  writer.close(); // each stream gets the empty sentinel after the chunks above
}

int main() {
  std::cout << "=== Basic Broadcast Example ===\n\n";

  asio::io_context ctx;
  bytecast::byte_writer writer{ctx};
  std::cout << "Created ByteWriter with ID: " << writer.id() << '\n';

  bytecast::byte_writer acks{ctx};
  auto ack_stream = acks.stream();
  for (int n = 1; n <= reader_count; ++n) asio::co_spawn(ctx, read_all(n, writer.stream(), acks), asio::detached);
  std::cout << "Created " << reader_count << " ByteStream readers\n\n";

  asio::co_spawn(ctx, write_all(writer, std::move(ack_stream)), asio::detached);
  ctx.run(); // returns once every reader saw the sentinel

  std::cout << "\n=== Example Complete ===\n\n"
            << "Key takeaways:\n"
            << "- ByteWriter broadcasts data to multiple ByteStream readers\n"
            << "- Each stream receives an independent copy of the data\n"
            << "- writer.close() sends an empty bytes signal to indicate completion\n"
            << "- ByteStream yields Result<Bytes, std::io::Error> items\n";
}
