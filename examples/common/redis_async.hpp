// hiredis's asynchronous API driven by an Asio io_context: `redis_connection` hooks hiredis's
// read/write events to async_wait on a posix::stream_descriptor over hiredis's socket (no extra
// thread, no polling), and offers `async_command(argv, token)`, completion
// `void(error_code, redis_reply)` with the reply copied into a plain C++ value.
#ifndef BYTECAST_EXAMPLES_REDIS_ASYNC_HPP
#define BYTECAST_EXAMPLES_REDIS_ASYNC_HPP

#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include "asio_backend.hpp" // asio::, standalone or Boost.Asio

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fanout {

/// A copy of a hiredis redisReply.
struct redis_reply {
  enum class kind { nil, string, status, error, integer, array };
  kind type = kind::nil;
  std::string str;                 // string, status, error
  long long integer = 0;           // integer
  std::vector<redis_reply> elements; // array

  [[nodiscard]] static redis_reply copy_of(const redisReply& r) {
    redis_reply out;
    switch (r.type) {
      case REDIS_REPLY_STRING: out.type = kind::string; break;
      case REDIS_REPLY_STATUS: out.type = kind::status; break;
      case REDIS_REPLY_ERROR: out.type = kind::error; break;
      case REDIS_REPLY_INTEGER: out.type = kind::integer; break;
      case REDIS_REPLY_ARRAY: out.type = kind::array; break;
      default: out.type = kind::nil; break;
    }
    if (r.str != nullptr) out.str.assign(r.str, r.len);
    out.integer = r.integer;
    for (std::size_t i = 0; i < r.elements; ++i)
      if (r.element[i] != nullptr) out.elements.push_back(copy_of(*r.element[i]));
    return out;
  }

  [[nodiscard]] bool is_error() const noexcept { return type == kind::error; }
  [[nodiscard]] bool is_array() const noexcept { return type == kind::array; }
};

namespace detail {

// One command sent to hiredis: its privdata. hiredis calls its callback exactly once (with the
// reply, or with NULL when the connection goes), and that call deletes it. The waiting handler
// may have been completed before (cancelled): then the callback only deletes it.
struct redis_pending {
  virtual ~redis_pending() = default;
  // Posts the handler's completion, the first time only.
  virtual void finish(const bytecast::error_code& ec, redis_reply r) = 0;
};

template <class Handler>
class redis_pending_for final : public redis_pending {
 public:
  using executor_type = asio::associated_executor_t<Handler, asio::any_io_executor>;

  redis_pending_for(Handler h, const asio::any_io_executor& fallback)
      : work_(asio::get_associated_executor(h, fallback)), handler_(std::move(h)) {
    auto slot = asio::get_associated_cancellation_slot(*handler_);
    // The slot's handler may outlive this object (it is not cleared from within itself, and a
    // later emit may come before the next operation replaces it): it finds this through self_.
    if (slot.is_connected())
      slot.assign([self = self_](asio::cancellation_type) {
        if (*self != nullptr) (*self)->complete(asio::error::operation_aborted, {}, false);
      });
  }

  redis_pending_for(const redis_pending_for&) = delete;
  redis_pending_for& operator=(const redis_pending_for&) = delete;
  ~redis_pending_for() override { *self_ = nullptr; }

  void finish(const bytecast::error_code& ec, redis_reply r) override { complete(ec, std::move(r), true); }

 private:
  void complete(const bytecast::error_code& ec, redis_reply r, bool clear_slot) {
    if (!handler_) return;
    if (clear_slot) {
      auto slot = asio::get_associated_cancellation_slot(*handler_);
      if (slot.is_connected()) slot.clear();
    }
    // Posted, never inline: hiredis is in the middle of its read loop when the reply comes.
    asio::post(work_.get_executor(), [h = std::move(*handler_), ec, r = std::move(r)]() mutable { std::move(h)(ec, std::move(r)); });
    handler_.reset();
    work_.reset();
  }

  std::shared_ptr<redis_pending_for*> self_ = std::make_shared<redis_pending_for*>(this); // null once destroyed
  asio::executor_work_guard<executor_type> work_;
  std::optional<Handler> handler_; // until complete()
};

} // namespace detail

/// One hiredis async connection on `ex`'s io_context. Not movable (hiredis holds `this`).
/// Once the connection is lost (last_error() says why) it stays lost: make a new one.
class redis_connection {
 public:
  /// Starts connecting to host:port (an IP address, or a name resolved by hiredis, blocking).
  redis_connection(const asio::any_io_executor& ex, const std::string& host, int port) : ex_(ex), socket_(ex) {
    ac_ = redisAsyncConnect(host.c_str(), port);
    if (ac_ == nullptr) {
      error_ = "out of memory";
      return;
    }
    if (ac_->err != 0) {
      error_ = ac_->errstr;
      redisAsyncFree(ac_);
      ac_ = nullptr;
      return;
    }
    ac_->data = this;
    ac_->ev.data = this;
    ac_->ev.addRead = [](void* self) { static_cast<redis_connection*>(self)->want(true, true); };
    ac_->ev.delRead = [](void* self) { static_cast<redis_connection*>(self)->want(true, false); };
    ac_->ev.addWrite = [](void* self) { static_cast<redis_connection*>(self)->want(false, true); };
    ac_->ev.delWrite = [](void* self) { static_cast<redis_connection*>(self)->want(false, false); };
    ac_->ev.cleanup = [](void* self) { static_cast<redis_connection*>(self)->forget_context(); };
    redisAsyncSetDisconnectCallback(ac_, [](const redisAsyncContext* ac, int) {
      auto* self = static_cast<redis_connection*>(ac->data);
      if (self->error_.empty()) self->error_ = ac->err != 0 ? std::string(ac->errstr) : "disconnected";
    });
    socket_.assign(ac_->c.fd);
  }

  redis_connection(const redis_connection&) = delete;
  redis_connection& operator=(const redis_connection&) = delete;

  /// Every command still pending completes with operation_aborted (posted).
  ~redis_connection() {
    freeing_ = true;
    if (ac_ != nullptr) redisAsyncFree(ac_); // calls forget_context(): the descriptor is released, hiredis closes it
  }

  /// Why the connection failed or was lost; empty while it is fine.
  [[nodiscard]] const std::string& last_error() const noexcept { return error_; }
  [[nodiscard]] bool is_open() const noexcept { return ac_ != nullptr && error_.empty(); }

  /// Sends one command; completion `void(error_code, redis_reply)`: a reply (which may be a
  /// Redis error reply, `is_error()`), or asio::error::not_connected / connection_reset when the
  /// connection failed or was lost (last_error() says how). Cancellation: completes with
  /// operation_aborted at once; the reply, when it comes, is dropped.
  template <class CompletionToken>
  auto async_command(std::vector<std::string> argv, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(bytecast::error_code, redis_reply)>(
        [this](auto handler, std::vector<std::string> args) {
          using pending_type = detail::redis_pending_for<std::decay_t<decltype(handler)>>;
          auto* p = new pending_type(std::move(handler), ex_);
          std::vector<const char*> ptrs;
          std::vector<std::size_t> lens;
          for (const auto& a : args) {
            ptrs.push_back(a.data());
            lens.push_back(a.size());
          }
          if (ac_ == nullptr ||
              redisAsyncCommandArgv(ac_, &redis_connection::on_reply, p, static_cast<int>(args.size()), ptrs.data(), lens.data()) !=
                  REDIS_OK) {
            if (error_.empty()) error_ = "not connected";
            p->finish(asio::error::not_connected, {});
            delete p;
          }
        },
        token, std::move(argv));
  }

 private:
  struct interest {
    bool wanted = false;  // hiredis asked for the event
    bool waiting = false; // an async_wait is pending
  };

  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
    auto* p = static_cast<detail::redis_pending*>(privdata);
    if (reply != nullptr) {
      p->finish({}, redis_reply::copy_of(*static_cast<redisReply*>(reply)));
    } else {
      auto* self = static_cast<redis_connection*>(ac->data);
      if (self->error_.empty()) self->error_ = ac->err != 0 ? std::string(ac->errstr) : "connection closed";
      p->finish(self->freeing_ ? bytecast::error_code(asio::error::operation_aborted) : bytecast::error_code(asio::error::connection_reset), {});
    }
    delete p;
  }

  interest& events(bool read) noexcept { return read ? reading_ : writing_; }

  void want(bool read, bool on) {
    events(read).wanted = on;
    if (on) arm(read);
  }

  void arm(bool read) {
    interest& i = events(read);
    if (i.waiting || !i.wanted || ac_ == nullptr) return;
    i.waiting = true;
    const auto type = read ? asio::posix::stream_descriptor::wait_read : asio::posix::stream_descriptor::wait_write;
    socket_.async_wait(type, [this, read, alive = std::weak_ptr<int>(alive_)](bytecast::error_code ec) {
      if (alive.expired()) return; // the connection is gone
      interest& again = events(read);
      again.waiting = false;
      if (ec || ac_ == nullptr || !again.wanted) return;
      if (read) redisAsyncHandleRead(ac_); else redisAsyncHandleWrite(ac_);
      arm(read); // hiredis may have freed the context meanwhile: then nothing
    });
  }

  // hiredis's cleanup hook: the context is being freed and will close the socket.
  void forget_context() {
    if (socket_.is_open()) (void)socket_.release(); // cancels the waits; hiredis closes the descriptor
    if (ac_ != nullptr && !freeing_ && error_.empty()) error_ = ac_->err != 0 ? std::string(ac_->errstr) : "disconnected";
    ac_ = nullptr;
  }

  asio::any_io_executor ex_;
  asio::posix::stream_descriptor socket_; // hiredis's socket, which hiredis owns
  redisAsyncContext* ac_ = nullptr;       // null once hiredis freed it
  interest reading_, writing_;
  std::string error_;
  bool freeing_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0); // the waits' handlers hold a weak_ptr
};

} // namespace fanout

#endif // BYTECAST_EXAMPLES_REDIS_ASYNC_HPP
