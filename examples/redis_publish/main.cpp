// redis_publish: stdin to a Redis Stream, one entry per chunk, for the fan-out servers' --redis.
//
//   producer | redis_publish --redis 127.0.0.1:6379 --key feed [--maxlen 10000] [--chunk 64k]
//
// Each read of stdin (at most --chunk bytes) becomes one entry `data <bytes>`, trimmed to about
// --maxlen entries (XADD ... MAXLEN ~ N); at stdin's end one entry `eof 1`. The IDs are its own:
// <ms>-1, <ms>-2, ... with <ms> after the stream's last ID at start, so they are dense (an edge
// knows the successor of the last entry it read, which makes its gap check exact), and a retry
// after a lost reply is recognised: Redis refuses an ID that is not greater than the last one,
// and a retry that gets that answer was written before. Lost connections are retried with
// back-off (100 ms doubling to 5 s), for ever; a Redis error reply other than that one ends it.
// hiredis's synchronous API: one blocking client, nothing else to do meanwhile.
#include <hiredis/hiredis.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

struct options {
  std::string host;
  int port = 0;
  std::string key;
  std::uint64_t maxlen = 10000;  // 0: no trimming
  std::size_t chunk = 64 * 1024; // the most bytes one entry holds
};

void log(std::string_view text) { std::cerr << "redis_publish: " << text << std::endl; }

[[noreturn]] void usage(std::string_view what) {
  std::cerr << "redis_publish: " << what << "\n\n"
            << "usage: redis_publish --redis HOST:PORT --key KEY [--maxlen N] [--chunk BYTES]\n"
            << "Copies stdin into the Redis Stream KEY, one entry (field `data`) per read of at most\n"
            << "BYTES bytes (default 65536; k and m suffixes), then an `eof` entry at stdin's end.\n"
            << "  --maxlen N   keep about N entries (XADD MAXLEN ~ N; default 10000, 0: no trimming)\n"
            << "Lost connections are retried with back-off (100 ms to 5 s) and nothing is written twice.\n"
            << "Exit status: 0 after the eof entry; 1 when Redis refuses an entry or stdin fails; 2 for\n"
            << "bad options.\n";
  std::exit(2);
}

template <class T>
std::optional<T> number(std::string_view text) {
  T v{};
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p != text.data() + text.size()) return std::nullopt;
  return v;
}

options parse(int argc, char** argv) {
  options o;
  std::string redis;
  for (int i = 1; i < argc; ++i) {
    const std::string_view name = argv[i];
    if (name == "--help" || name == "-h") usage("copies stdin to a Redis Stream");
    if (i + 1 == argc) usage(std::string(name) + " needs a value");
    const std::string_view value = argv[++i];
    if (name == "--redis") {
      redis = value;
    } else if (name == "--key") {
      o.key = value;
    } else if (name == "--maxlen") {
      auto v = number<std::uint64_t>(value);
      if (!v) usage("--maxlen: expected a number of entries");
      o.maxlen = *v;
    } else if (name == "--chunk") {
      std::string_view t = value;
      std::size_t unit = 1;
      if (!t.empty() && (t.back() == 'k' || t.back() == 'K')) unit = 1024;
      if (!t.empty() && (t.back() == 'm' || t.back() == 'M')) unit = 1024 * 1024;
      if (unit != 1) t.remove_suffix(1);
      auto v = number<std::size_t>(t);
      if (!v || *v == 0 || *v > 512 * 1024 * 1024 / unit) usage("--chunk: expected 1 to 512m bytes");
      o.chunk = *v * unit;
    } else {
      usage("unknown option '" + std::string(name) + "'");
    }
  }
  const auto colon = redis.rfind(':');
  auto port = colon == std::string::npos ? std::nullopt : number<std::uint16_t>(std::string_view(redis).substr(colon + 1));
  if (colon == std::string::npos || colon == 0 || !port) usage("--redis: expected HOST:PORT, such as 127.0.0.1:6379");
  if (o.key.empty()) usage("--key: expected a stream key");
  o.host = redis.substr(0, colon);
  o.port = *port;
  return o;
}

struct reply_deleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

class publisher {
 public:
  explicit publisher(options o) : o_(std::move(o)) {}
  ~publisher() {
    if (c_ != nullptr) redisFree(c_);
  }
  publisher(const publisher&) = delete;
  publisher& operator=(const publisher&) = delete;

  // The stream's last ID now, so that ours come after it.
  void start() {
    for (;;) {
      reply_ptr r = command({"XREVRANGE", o_.key, "+", "-", "COUNT", "1"});
      if (!r) continue;
      if (r->type == REDIS_REPLY_ERROR && std::string_view(r->str).starts_with("LOADING")) {
        wait_and_retry(r->str);
        continue;
      }
      if (r->type == REDIS_REPLY_ERROR) fail(std::string("XREVRANGE: ") + r->str);
      std::uint64_t last_ms = 0;
      if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        const std::string_view id(r->element[0]->element[0]->str, r->element[0]->element[0]->len);
        last_ms = number<std::uint64_t>(id.substr(0, id.find('-'))).value_or(0);
      }
      const auto now = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
      ms_ = std::max(now, last_ms + 1);
      log("publishing to stream '" + o_.key + "' with IDs " + std::to_string(ms_) + "-1, -2, ...");
      return;
    }
  }

  // XADD with the next ID; a retry whose ID Redis already has was written before.
  void add(std::string_view field, std::string_view value) {
    const std::string id = std::to_string(ms_) + "-" + std::to_string(++seq_);
    std::vector<std::string> argv{"XADD", o_.key};
    if (o_.maxlen != 0) argv.insert(argv.end(), {"MAXLEN", "~", std::to_string(o_.maxlen)});
    argv.insert(argv.end(), {id, std::string(field), std::string(value)});
    bool retry = false;
    for (;;) {
      reply_ptr r = command(argv);
      if (!r) {
        retry = true;
        continue;
      }
      if (r->type == REDIS_REPLY_ERROR) {
        const std::string text(r->str, r->len);
        if (text.starts_with("LOADING")) { // a restarted Redis reads its append-only file
          wait_and_retry(text);
          retry = true;
          continue;
        }
        if (retry && text.find("equal or smaller") != std::string::npos) {
          log("entry " + id + " was written before the connection was lost: not written again");
          return;
        }
        fail("XADD " + id + ": " + text);
      }
      return;
    }
  }

 private:
  [[noreturn]] static void fail(const std::string& what) {
    log(what);
    std::exit(1);
  }

  void wait_and_retry(const std::string& why) {
    log(why + ": again in " + std::to_string(backoff_.count()) + " ms");
    std::this_thread::sleep_for(backoff_);
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(5000));
  }

  // One command, connecting first if needed (with back-off after a failure); null when the
  // connection failed or was lost (the caller retries).
  reply_ptr command(const std::vector<std::string>& argv) {
    if (c_ == nullptr && !connect()) return nullptr;
    std::vector<const char*> ptrs;
    std::vector<std::size_t> lens;
    for (const auto& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    reply_ptr r(static_cast<redisReply*>(redisCommandArgv(c_, static_cast<int>(argv.size()), ptrs.data(), lens.data())));
    if (!r) {
      log(std::string("connection lost: ") + c_->errstr);
      redisFree(c_);
      c_ = nullptr;
      return nullptr;
    }
    backoff_ = std::chrono::milliseconds(100);
    attempts_ = 0;
    return r;
  }

  bool connect() {
    if (attempts_++ > 0) {
      log("connecting to " + o_.host + ":" + std::to_string(o_.port) + " again in " + std::to_string(backoff_.count()) +
          " ms (attempt " + std::to_string(attempts_) + ")");
      std::this_thread::sleep_for(backoff_);
      backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(5000));
    }
    c_ = redisConnectWithTimeout(o_.host.c_str(), o_.port, timeval{2, 0});
    if (c_ == nullptr || c_->err != 0) {
      log("cannot connect to " + o_.host + ":" + std::to_string(o_.port) + ": " + (c_ ? c_->errstr : "out of memory"));
      if (c_ != nullptr) redisFree(c_);
      c_ = nullptr;
      return false;
    }
    redisSetTimeout(c_, timeval{10, 0}); // a Redis that stops answering counts as lost
    return true;
  }

  options o_;
  redisContext* c_ = nullptr;
  std::chrono::milliseconds backoff_{100};
  unsigned attempts_ = 0; // connection attempts since the last reply
  std::uint64_t ms_ = 0;  // our IDs: ms_-1, ms_-2, ...
  std::uint64_t seq_ = 0;
};

} // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  publisher p(o);
  p.start();
  std::vector<char> buffer(o.chunk);
  std::uint64_t entries = 0, bytes = 0;
  for (;;) {
    const ssize_t n = ::read(STDIN_FILENO, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      log(std::string("cannot read stdin: ") + std::strerror(errno));
      return 1;
    }
    if (n == 0) break;
    p.add("data", std::string_view(buffer.data(), static_cast<std::size_t>(n)));
    ++entries;
    bytes += static_cast<std::uint64_t>(n);
  }
  p.add("eof", "1");
  log("stdin ended: " + std::to_string(entries) + " entries, " + std::to_string(bytes) + " bytes, then the eof entry");
  return 0;
}
