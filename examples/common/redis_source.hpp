// --redis HOST:PORT --key KEY: the feed is a Redis Stream, read with XREAD BLOCK over
// redis_async.hpp on the server's own io_context. Each entry's `data` field is one chunk, in
// order; an `eof` field ends the feed cleanly, an `error` field fails it. On a lost connection it
// reconnects with bounded back-off and goes on after the last entry it read (kept in memory), so
// nothing is lost or duplicated; entries trimmed away meanwhile are a gap, logged and by default
// the feed's failure (bytecast::error::lagged).

// fanout_feed.hpp before the guard: it includes this header itself (for make_feed_source), after
// it declared feed_source, so that whichever of the two comes first, redis_source is defined
// between feed_source and make_feed_source.
#include "fanout_feed.hpp"

#ifndef BYTECAST_EXAMPLES_REDIS_SOURCE_HPP
#define BYTECAST_EXAMPLES_REDIS_SOURCE_HPP

#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include "asio_backend.hpp" // asio::, standalone or Boost.Asio
#include "fanout_log.hpp"
#include "fanout_options.hpp"
#include "redis_async.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace fanout {

/// A Redis Stream entry ID, "<ms>-<seq>".
struct stream_id {
  std::uint64_t ms = 0;
  std::uint64_t seq = 0;

  [[nodiscard]] static std::optional<stream_id> parse(std::string_view text) {
    const auto dash = text.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    auto ms = detail::parse_number<std::uint64_t>(text.substr(0, dash));
    auto seq = detail::parse_number<std::uint64_t>(text.substr(dash + 1));
    if (!ms || !seq) return std::nullopt;
    return stream_id{*ms, *seq};
  }
  [[nodiscard]] std::string text() const { return std::to_string(ms) + "-" + std::to_string(seq); }
  [[nodiscard]] friend auto operator<=>(const stream_id&, const stream_id&) = default;
};

class redis_source final : public feed_source {
 public:
  redis_source(asio::io_context& ctx, const options& opts, std::string_view program)
      : ctx_(ctx), opts_(opts), log_(program), timer_(ctx) {}

  [[nodiscard]] std::string description() const override {
    std::string what = "Redis Stream '" + opts_.redis_key + "' at " + opts_.redis + " (XREAD)";
    if (opts_.redis_replay > 0) what += ", starting with its last " + std::to_string(opts_.redis_replay) + " entries";
    return what;
  }

  asio::awaitable<feed_piece> next() override {
    for (;;) {
      if (!queue_.empty()) {
        current_ = std::move(queue_.front());
        queue_.pop_front();
        switch (current_.what) {
          case entry::data:
            co_return feed_piece{{}, std::as_bytes(std::span(current_.bytes.data(), current_.bytes.size()))};
          case entry::eof:
            log("redis: entry " + current_.id + " is the end of the feed (eof)");
            co_return feed_piece{asio::error::eof, {}};
          case entry::error:
            log("redis: entry " + current_.id + " is an error: " + current_.bytes);
            co_return feed_piece{bytecast::error_code(EIO, asio::error::get_system_category()), {}};
          case entry::malformed:
            log("redis: entry " + current_.id + " has no data, eof or error field: " + current_.bytes);
            co_return feed_piece{bytecast::error_code(EBADMSG, asio::error::get_system_category()), {}};
        }
      }
      if (const bytecast::error_code ec = co_await fetch()) co_return feed_piece{ec, {}};
    }
  }

 private:
  struct entry {
    enum kind { data, eof, error, malformed } what = data;
    std::string id;
    std::string bytes; // data: the chunk; error, malformed: the text
  };

  void log(std::string_view text) const { log_(text); }

  // One round: (re)connect if needed, then one XREAD into queue_. An error only when the feed
  // must end: cancelled, a gap, or a key that is no stream.
  asio::awaitable<bytecast::error_code> fetch() {
    if (!conn_ || !conn_->is_open()) {
      if (const auto ec = co_await connect()) co_return ec;
      co_return bytecast::error_code{}; // the start may have queued the replay
    }
    std::vector<std::string> argv{"XREAD", "COUNT", std::to_string(read_count), "BLOCK",
                                               std::to_string(block_ms), "STREAMS", opts_.redis_key, cursor_.text()};
    const command_result r = co_await command(std::move(argv));
    if (r.ec) co_return r.ec;
    if (r.lost) co_return bytecast::error_code{}; // reconnects next time
    const redis_reply& reply = r.reply;
    if (reply.is_error()) co_return failed_reply("XREAD", reply);
    if (reply.type == redis_reply::kind::nil) co_return bytecast::error_code{}; // BLOCK timed out
    if (reply.elements.size() != 1 || reply.elements[0].elements.size() != 2) co_return bytecast::error_code{};
    const std::vector<redis_reply>& entries = reply.elements[0].elements[1].elements;
    // Entries trimmed before this edge read them (it was paused, or slow): XREAD skips them
    // silently. The first entry is the next ID (redis_publish's dense IDs) or, when it is not,
    // the stream's highest deleted ID tells whether one after cursor_ went.
    const std::optional<stream_id> first =
        entries.empty() || entries[0].elements.empty() ? std::nullopt : stream_id::parse(entries[0].elements[0].str);
    if (first && *first != stream_id{cursor_.ms, cursor_.seq + 1}) {
      std::vector<std::string> info{"XINFO", "STREAM", opts_.redis_key};
      const command_result i = co_await command(std::move(info));
      if (i.ec) co_return i.ec;
      if (i.lost) co_return bytecast::error_code{}; // the batch is read again after the reconnect
      if (i.reply.is_error()) co_return failed_reply("XINFO STREAM", i.reply);
      if (gap_after_cursor(parse_info(i.reply)))
        if (const auto ec = report_gap(first)) co_return ec;
    }
    take_entries(entries);
    co_return bytecast::error_code{};
  }

  struct stream_state {
    std::optional<stream_id> first;       // the oldest entry left
    std::optional<stream_id> max_deleted; // the highest ID deleted or trimmed (Redis 7)
  };

  // Whether entries after cursor_ may be gone: one was deleted (XDEL sets max-deleted-entry-id),
  // or the entry cursor_ names was trimmed away (MAXLEN trims the oldest first, and does not
  // set max-deleted-entry-id) and the oldest left is not the next ID. IDs are not dense in
  // general; redis_publish's are (<ms>-1, <ms>-2, ...), so for its streams the next ID is exact.
  // For others an edge about MAXLEN entries behind may be told of a gap that was none.
  [[nodiscard]] bool gap_after_cursor(const stream_state& state) const {
    const stream_id successor{cursor_.ms, cursor_.seq + 1};
    if (state.max_deleted && *state.max_deleted > cursor_) return true;
    if (cursor_ == stream_id{}) return false; // the stream was empty at the start: nothing read yet to follow
    return state.first && *state.first > cursor_ && *state.first != successor;
  }

  // XINFO STREAM's reply: name, value, name, value, ...
  [[nodiscard]] static stream_state parse_info(const redis_reply& reply) {
    stream_state state;
    for (std::size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
      const std::string& name = reply.elements[i].str;
      const redis_reply& value = reply.elements[i + 1];
      if (name == "max-deleted-entry-id") state.max_deleted = stream_id::parse(value.str);
      if (name == "first-entry" && value.is_array() && !value.elements.empty())
        state.first = stream_id::parse(value.elements[0].str);
    }
    return state;
  }

  // Logs the gap after cursor_ (`first`: the oldest entry left); lagged, or nothing with --on-gap skip.
  [[nodiscard]] bytecast::error_code report_gap(const std::optional<stream_id>& first) {
    std::string how_many = "an unknown number of entries";
    if (first && first->ms == cursor_.ms && first->seq > cursor_.seq)
      how_many = std::to_string(first->seq - cursor_.seq - 1) + " entries";
    log("redis: gap: " + how_many + " after " + cursor_.text() + " are gone (oldest left: " + (first ? first->text() : "none") +
        ")" + (opts_.redis_skip_gaps ? "; --on-gap skip: going on from the oldest left" : "; the feed fails (--on-gap fail)"));
    if (!opts_.redis_skip_gaps) return bytecast::error::lagged;
    return {}; // XREAD after cursor_ returns the oldest left first
  }

  struct command_result {
    bytecast::error_code ec; // only operation_aborted: the server shuts down
    bool lost = false;       // the connection was lost (and dropped): the caller comes back later
    redis_reply reply;
  };

  // A command on the connection. A lost connection is dropped (fetch() reconnects), and so is
  // one that gives no reply within the time the command may block plus reply_grace: a Redis
  // that vanished without a reset (a half-open connection) must not stall the feed for ever.
  asio::awaitable<command_result> command(std::vector<std::string> argv) {
    using namespace asio::experimental::awaitable_operators;
    bytecast::error_code ec, wait_ec;
    timer_.expires_after(std::chrono::milliseconds(block_ms) + reply_grace);
    auto done = co_await (conn_->async_command(std::move(argv), asio::redirect_error(asio::use_awaitable, ec)) ||
                          timer_.async_wait(asio::redirect_error(asio::use_awaitable, wait_ec)));
    if (done.index() == 1) {
      if (wait_ec) co_return command_result{asio::error::operation_aborted, false, {}}; // cancelled
      log("redis: no reply within " + std::to_string(block_ms / 1000 + reply_grace.count()) + " s: taking the connection as lost");
      conn_.reset();
      co_return command_result{{}, true, {}};
    }
    if (ec == asio::error::operation_aborted) co_return command_result{ec, false, {}};
    if (ec) {
      log("redis: connection lost (" + conn_->last_error() + ")");
      conn_.reset();
      co_return command_result{{}, true, {}};
    }
    backoff_ = initial_backoff; // a reply: the connection works
    attempts_ = 1;
    co_return command_result{{}, false, std::move(std::get<0>(done))};
  }

  bytecast::error_code failed_reply(std::string_view what, const redis_reply& reply) {
    log("redis: " + std::string(what) + " failed: " + reply.str);
    if (reply.str.starts_with("WRONGTYPE")) {
      log("redis: key '" + opts_.redis_key + "' holds no stream");
      return bytecast::error_code(EINVAL, asio::error::get_system_category());
    }
    conn_.reset(); // other errors (LOADING after a restart, ...): retried after the back-off
    return {};
  }

  // Connects (after the back-off if this is a retry), then either settles where to start (the
  // first time) or checks for a gap (a reconnect).
  asio::awaitable<bytecast::error_code> connect() {
    if (attempts_++ > 0) {
      log("redis: connecting to " + opts_.redis + " again in " + std::to_string(backoff_.count()) + " ms (attempt " +
          std::to_string(attempts_) + ")");
      timer_.expires_after(backoff_);
      bytecast::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return ec;
      backoff_ = std::min(backoff_ * 2, max_backoff);
    }
    const auto colon = opts_.redis.rfind(':');
    const int port = std::stoi(opts_.redis.substr(colon + 1));
    conn_ = std::make_unique<redis_connection>(ctx_.get_executor(), opts_.redis.substr(0, colon), port);
    if (started_) co_return co_await check_gap();
    co_return co_await start();
  }

  // The first connection: start after the newest entry, or --redis-replay K entries before it.
  asio::awaitable<bytecast::error_code> start() {
    const std::size_t count = std::max<std::size_t>(opts_.redis_replay, 1);
    std::vector<std::string> argv{"XREVRANGE", opts_.redis_key, "+", "-", "COUNT", std::to_string(count)};
    const command_result r = co_await command(std::move(argv));
    if (r.ec) co_return r.ec;
    const redis_reply& reply = r.reply;
    if (r.lost) co_return bytecast::error_code{}; // again
    if (reply.is_error()) co_return failed_reply("XREVRANGE", reply);
    started_ = true;
    if (reply.elements.empty()) {
      log("redis: connected; stream '" + opts_.redis_key + "' is empty: reading from its first entry");
      co_return bytecast::error_code{};
    }
    std::vector<redis_reply> newest_first = reply.elements;
    std::reverse(newest_first.begin(), newest_first.end());
    if (opts_.redis_replay == 0) {
      cursor_ = stream_id::parse(newest_first.back().elements.at(0).str).value_or(stream_id{});
    } else {
      take_entries(newest_first);
      log("redis: replaying the last " + std::to_string(newest_first.size()) + " entries");
    }
    log("redis: connected; reading stream '" + opts_.redis_key + "' after " + cursor_.text());
    co_return bytecast::error_code{};
  }

  // A reconnect: were entries after cursor_ trimmed away meanwhile? XINFO STREAM tells.
  asio::awaitable<bytecast::error_code> check_gap() {
    std::vector<std::string> argv{"XINFO", "STREAM", opts_.redis_key};
    const command_result r = co_await command(std::move(argv));
    if (r.ec) co_return r.ec;
    const redis_reply& reply = r.reply;
    if (r.lost) co_return bytecast::error_code{};
    if (reply.is_error()) {
      if (reply.str.find("no such key") != std::string::npos) {
        log("redis: reconnected; stream '" + opts_.redis_key + "' does not exist (yet): reading after " + cursor_.text());
        co_return bytecast::error_code{};
      }
      co_return failed_reply("XINFO STREAM", reply);
    }
    const stream_state state = parse_info(reply);
    if (!gap_after_cursor(state)) {
      log("redis: reconnected; reading after " + cursor_.text() + ", nothing lost");
      co_return bytecast::error_code{};
    }
    co_return report_gap(state.first);
  }

  // Queues `entries` ([id, [field, value, ...]] each) and moves the cursor past them.
  void take_entries(const std::vector<redis_reply>& entries) {
    for (const redis_reply& e : entries) {
      if (e.elements.size() != 2) continue;
      entry item;
      item.id = e.elements[0].str;
      if (auto id = stream_id::parse(item.id)) cursor_ = *id;
      const auto& fields = e.elements[1].elements;
      item.what = entry::malformed;
      item.bytes = "fields:";
      for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
        const std::string& name = fields[i].str;
        if (name == "data" || name == "eof" || name == "error") {
          item.what = name == "data" ? entry::data : name == "eof" ? entry::eof : entry::error;
          item.bytes = fields[i + 1].str;
          break;
        }
        item.bytes += " " + name;
      }
      if (item.what == entry::data && item.bytes.empty()) continue; // nothing to write
      queue_.push_back(std::move(item));
    }
  }

  static constexpr int read_count = 64;     // entries per XREAD
  static constexpr int block_ms = 5000;     // XREAD BLOCK
  static constexpr std::chrono::milliseconds initial_backoff{100};
  static constexpr std::chrono::milliseconds max_backoff{5000};
  static constexpr std::chrono::seconds reply_grace{10}; // beyond BLOCK: no reply means a lost connection

  asio::io_context& ctx_;
  const options opts_;
  logger log_;
  asio::steady_timer timer_; // the back-off, and a command's reply time
  std::unique_ptr<redis_connection> conn_;
  std::chrono::milliseconds backoff_ = initial_backoff;
  std::uint64_t attempts_ = 0;
  bool started_ = false; // the start position is settled
  stream_id cursor_;     // the last entry read (queued or written): XREAD goes on after it
  std::deque<entry> queue_;
  entry current_; // the piece next() returned last
};

} // namespace fanout

#endif // BYTECAST_EXAMPLES_REDIS_SOURCE_HPP
