// The command line of tcp_fanout and http_fanout: `options`, its parser and the usage text.
#ifndef BYTECAST_EXAMPLES_FANOUT_OPTIONS_HPP
#define BYTECAST_EXAMPLES_FANOUT_OPTIONS_HPP

#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include "asio_backend.hpp" // asio::, standalone or Boost.Asio

#include <chrono>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fanout {

struct options {
  asio::ip::address bind = asio::ip::address_v4::loopback(); // --bind: loopback unless told
  std::uint16_t port = 0;                                    // --port: 0 picks a free one
  bytecast::writer_options writer{};                         // --policy, --queue-limit, --replay
  bool generate = false;                                     // --generate even if stdin is not a terminal
  double rate = 10;                                          // --rate: generated lines per second, 0 = no pause
  std::uint64_t count = 0;                                   // --count: generated lines, 0 = no end
  std::size_t wait_for_clients = 0;                          // --wait-for-clients: feed once N receive it
  bool lazy = false;                                         // --lazy: generate only while clients listen
  std::optional<double> idle_grace;                          // --idle-grace: seconds without clients before a pause
  std::chrono::milliseconds stats{0};                        // --stats: interval of the stats line, 0 = off
  std::chrono::milliseconds drain{5000};                     // --drain-timeout after the feed's end or a signal
  std::chrono::milliseconds write_timeout{5000};             // --write-timeout: a client that takes no bytes, 0 = none
  std::string archive;                                       // --archive: the file every byte also goes to, "" = none
  std::optional<std::size_t> archive_limit;                  // --archive-limit: its stream's queue limit, 0 = unbounded
  std::optional<std::uint64_t> fail_after;                   // --fail-after: the feed fails after this many bytes
  std::string redis;                                         // --redis HOST:PORT: the feed is a Redis Stream, "" = none
  std::string redis_key;                                     // --key: that stream's key
  std::size_t redis_replay = 0;                              // --redis-replay: entries to start with
  bool redis_skip_gaps = false;                              // --on-gap skip (default: fail)
};

inline constexpr double min_rate = 0.001;   // --rate: a line every 1000 s
inline constexpr double max_rate = 1000000; // --rate: a line every microsecond
inline constexpr double default_idle_grace = 5;     // --idle-grace, seconds
inline constexpr double max_idle_grace = 24 * 3600; // --idle-grace: a day

/// "wait", "drop_oldest", "disconnect": as --policy spells them.
[[nodiscard]] inline std::string_view policy_name(bytecast::overflow_policy p) noexcept {
  switch (p) {
    case bytecast::overflow_policy::wait: return "wait";
    case bytecast::overflow_policy::drop_oldest: return "drop_oldest";
    case bytecast::overflow_policy::disconnect: return "disconnect";
  }
  return "?";
}

namespace detail {

template <class T>
[[nodiscard]] std::optional<T> parse_number(std::string_view text) {
  T value{};
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end) return std::nullopt;
  return value;
}

// "65536", "64k", "4m": bytes, with an optional binary suffix (KiB, MiB, GiB).
[[nodiscard]] inline std::optional<std::size_t> parse_size(std::string_view text) {
  std::size_t unit = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'k': case 'K': unit = std::size_t{1} << 10; break;
      case 'm': case 'M': unit = std::size_t{1} << 20; break;
      case 'g': case 'G': unit = std::size_t{1} << 30; break;
      default: break;
    }
    if (unit != 1) text.remove_suffix(1);
  }
  auto value = parse_number<std::size_t>(text);
  if (!value || *value > std::numeric_limits<std::size_t>::max() / unit) return std::nullopt;
  return *value * unit;
}

inline void print_usage(std::ostream& out, std::string_view program, std::string_view summary) {
  out << "usage: " << program << " [options]\n"
      << summary << "\n"
      << "The feed is stdin when stdin is not a terminal (its end ends the feed), else generated lines.\n"
      << "A closed stdin is an error (exit 2) unless --generate.\n"
      << "\n"
      << "options:\n"
      << "  --port N             port to listen on (default 0: pick a free one; printed on stdout)\n"
      << "  --bind ADDR          address to listen on (default 127.0.0.1)\n"
      << "  --policy P           wait | drop_oldest | disconnect: what happens when a client's queue\n"
      << "                       is full (default wait; needs --queue-limit)\n"
      << "  --queue-limit BYTES  per-client queue limit, 0 = unbounded (default 0)\n"
      << "  --replay BYTES       recent bytes a new client gets first (default 0)\n"
      << "  --generate           generated feed even when stdin is not a terminal\n"
      << "  --rate N             generated lines per second, 0.001 to 1000000, or 0 = no pause\n"
      << "                       (default 10)\n"
      << "  --count N            generated lines in total, then the feed ends (default 0: no end)\n"
      << "  --wait-for-clients N start the feed once N clients are there to receive it (default 0:\n"
      << "                       at once)\n"
      << "  --lazy               with the generated feed: generate only while clients are connected;\n"
      << "                       start when one arrives, pause when none is left for --idle-grace\n"
      << "  --idle-grace SECONDS with --lazy: how long the feed goes on after the last client left,\n"
      << "                       0 to 86400 (default 5); a client arriving meanwhile keeps it going\n"
      << "  --stats MS           a stats line on stderr every MS ms, when it changed (default 0: off)\n"
      << "  --drain-timeout MS   after the feed's end or SIGINT/SIGTERM, how long clients may take\n"
      << "                       to receive what is queued for them (default 5000)\n"
      << "  --write-timeout MS   a client that takes no bytes for MS ms is dropped (default 5000;\n"
      << "                       0: never)\n"
      << "  --archive PATH       also write every byte of the feed to the file PATH, through a stream\n"
      << "                       of its own under `wait`: the archive gets every byte and may hold\n"
      << "                       the feed back, while the clients keep --policy\n"
      << "  --archive-limit BYTES\n"
      << "                       the archive stream's queue limit (default 0: unbounded)\n"
      << "  --fail-after BYTES   for tests: the feed fails (an I/O error) after BYTES bytes; clients\n"
      << "                       then see a broken end, not a clean one\n"
      << "  --redis HOST:PORT    the feed is a Redis Stream (needs --key) instead of stdin: each\n"
      << "                       entry's `data` field is one chunk; an `eof` field ends the feed,\n"
      << "                       an `error` field fails it; reconnects with back-off (100 ms to 5 s)\n"
      << "                       and goes on after the last entry read\n"
      << "  --key KEY            the stream's key\n"
      << "  --redis-replay N     start with the stream's last N entries (default 0: new entries only);\n"
      << "                       with --replay BYTES they also reach clients that join later\n"
      << "  --on-gap P           fail | skip: entries trimmed away during a reconnect fail the feed\n"
      << "                       (default fail: clients see a broken end), or are skipped\n"
      << "  --help               this text\n"
      << "BYTES take an optional k, m or g suffix (KiB, MiB, GiB).\n"
      << "Exit status: 0 after the feed's clean end or a signal; 1 when the feed failed, the archive\n"
      << "could not be written or the server cannot start; 2 for bad options or a closed stdin.\n";
}

[[noreturn]] inline void usage_error(std::string_view program, std::string_view summary, const std::string& what) {
  std::cerr << program << ": " << what << "\n\n";
  print_usage(std::cerr, program, summary);
  std::exit(2);
}

} // namespace detail

/// Parses the command line shared by both servers. Bad options: usage on stderr, exit 2;
/// --help: usage on stdout, exit 0.
[[nodiscard]] inline options parse_options(int argc, char** argv, std::string_view program,
                                           std::string_view summary) {
  options o;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view name = args[i];
    std::optional<std::string_view> inline_value; // --name=value
    if (auto eq = name.find('='); name.starts_with("--") && eq != std::string_view::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto fail = [&](const std::string& what) { detail::usage_error(program, summary, what); };
    auto value = [&]() -> std::string_view {
      if (inline_value) return *inline_value;
      if (i + 1 == args.size()) fail(std::string(name) + " needs a value");
      return args[++i];
    };
    auto size_value = [&]() {
      auto v = detail::parse_size(value());
      if (!v) fail(std::string(name) + ": expected a byte count such as 65536, 64k or 4m");
      return *v;
    };
    auto millis_value = [&]() {
      auto v = detail::parse_number<std::uint32_t>(value());
      if (!v) fail(std::string(name) + ": expected milliseconds");
      return std::chrono::milliseconds(*v);
    };

    if (name == "--help" || name == "-h") {
      detail::print_usage(std::cout, program, summary);
      std::exit(0);
    } else if (name == "--port") {
      auto v = detail::parse_number<std::uint16_t>(value());
      if (!v) fail("--port: expected a number from 0 to 65535");
      o.port = *v;
    } else if (name == "--bind") {
      bytecast::error_code ec;
      o.bind = asio::ip::make_address(std::string(value()), ec);
      if (ec) fail("--bind: expected an IPv4 or IPv6 address");
    } else if (name == "--policy") {
      std::string_view p = value();
      if (p == "wait") o.writer.on_overflow = bytecast::overflow_policy::wait;
      else if (p == "drop_oldest") o.writer.on_overflow = bytecast::overflow_policy::drop_oldest;
      else if (p == "disconnect") o.writer.on_overflow = bytecast::overflow_policy::disconnect;
      else fail("--policy: expected wait, drop_oldest or disconnect");
    } else if (name == "--queue-limit") {
      o.writer.queue_limit = size_value();
    } else if (name == "--replay") {
      o.writer.replay_limit = size_value();
    } else if (name == "--generate") {
      if (inline_value) fail("--generate takes no value");
      o.generate = true;
    } else if (name == "--rate") {
      // Bounded so that every rate accepted means what it says: 1/rate seconds must fit the
      // clock's nanoseconds (1e-10 overflowed into no pause at all) and stay whole
      // nanoseconds; and the generator keeps up with the fastest (2M lines in 2.0 s at
      // --rate 1000000 on a 2-vCPU VM).
      auto v = detail::parse_number<double>(value());
      if (!v || !(*v == 0 || (*v >= min_rate && *v <= max_rate)))
        fail("--rate: expected 0 (no pause) or lines per second from 0.001 to 1000000");
      o.rate = *v;
    } else if (name == "--count") {
      auto v = detail::parse_number<std::uint64_t>(value());
      if (!v) fail("--count: expected a number of lines");
      o.count = *v;
    } else if (name == "--wait-for-clients") {
      auto v = detail::parse_number<std::size_t>(value());
      if (!v) fail("--wait-for-clients: expected a number of clients");
      o.wait_for_clients = *v;
    } else if (name == "--lazy") {
      if (inline_value) fail("--lazy takes no value");
      o.lazy = true;
    } else if (name == "--idle-grace") {
      auto v = detail::parse_number<double>(value());
      if (!v || !(*v >= 0 && *v <= max_idle_grace)) fail("--idle-grace: expected seconds from 0 to 86400");
      o.idle_grace = *v;
    } else if (name == "--stats") {
      o.stats = millis_value();
    } else if (name == "--drain-timeout") {
      o.drain = millis_value();
    } else if (name == "--write-timeout") {
      o.write_timeout = millis_value();
    } else if (name == "--archive") {
      o.archive = std::string(value());
      if (o.archive.empty()) fail("--archive: expected a file name");
    } else if (name == "--archive-limit") {
      o.archive_limit = size_value();
    } else if (name == "--fail-after") {
      o.fail_after = size_value();
    } else if (name == "--redis") {
      o.redis = std::string(value());
      const auto colon = o.redis.rfind(':');
      if (colon == std::string::npos || colon == 0 || !detail::parse_number<std::uint16_t>(std::string_view(o.redis).substr(colon + 1)))
        fail("--redis: expected HOST:PORT, such as 127.0.0.1:6379");
    } else if (name == "--key") {
      o.redis_key = std::string(value());
      if (o.redis_key.empty()) fail("--key: expected a stream key");
    } else if (name == "--redis-replay") {
      auto v = detail::parse_number<std::size_t>(value());
      if (!v) fail("--redis-replay: expected a number of entries");
      o.redis_replay = *v;
    } else if (name == "--on-gap") {
      std::string_view p = value();
      if (p == "fail") o.redis_skip_gaps = false;
      else if (p == "skip") o.redis_skip_gaps = true;
      else fail("--on-gap: expected fail or skip");
    } else {
      fail("unknown option '" + std::string(args[i]) + "'");
    }
  }
  // Options that only mean something with another one.
  auto fail = [&](const std::string& what) { detail::usage_error(program, summary, what); };
  if (o.archive_limit && o.archive.empty()) fail("--archive-limit needs --archive");
  if (o.idle_grace && !o.lazy) fail("--idle-grace needs --lazy");
  if (o.redis.empty() != o.redis_key.empty()) fail("--redis and --key go together");
  if (!o.redis.empty() && (o.generate || o.lazy)) fail("--redis is the feed: no --generate or --lazy with it");
#if !defined(BYTECAST_EXAMPLES_WITH_REDIS)
  if (!o.redis.empty()) fail("--redis: this build has no hiredis (install libhiredis-dev and build again)");
#endif
  // The archive's stream never leaves, so the feed would never pause.
  if (o.lazy && !o.archive.empty()) fail("--lazy and --archive do not go together: the archive always listens");
  return o;
}
} // namespace fanout

#endif // BYTECAST_EXAMPLES_FANOUT_OPTIONS_HPP
