// One program, two builds of bytecast: standalone.cpp on standalone Asio, boost.cpp on Boost.Asio.
// Each names its types in its own inline namespace (bytecast::asio_standalone, bytecast::boost_asio),
// so nothing of one build replaces the other's at link time: both broadcast correctly, and each
// keeps its own error category (an ODR violation would merge the two get_category() functions, and
// with them their static category object).
#include "backends.hpp"

#include <cstdio>
#include <string>
#include <vector>

int main() {
  const std::vector<std::string> chunks{"one", "two", "three"};
  const std::string expected = "one|two|three|";
  int failures = 0;
  auto check = [&](bool ok, const char* what) {
    std::printf("%s: %s\n", ok ? "ok" : "FAILED", what);
    if (!ok) ++failures;
  };

  const auto a = on_standalone_asio::broadcast(chunks);
  const auto b = on_boost_asio::broadcast(chunks);
  for (const auto& r : a.received) check(r == expected, "standalone Asio: a reader got every chunk in order");
  for (const auto& r : b.received) check(r == expected, "Boost.Asio: a reader got every chunk in order");
  check(a.received.size() == 3 && b.received.size() == 3, "three readers each");
  check(a.bytes_written == 11 && b.bytes_written == 11, "bytes_written() is 11 in both builds");
  check(a.category != nullptr && b.category != nullptr && a.category != b.category,
        "each build has its own bytecast error category");
  check(!a.lagged_message.empty() && a.lagged_message == b.lagged_message, "both categories give the same messages");
  return failures == 0 ? 0 : 1;
}
