// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_READ_OP_HPP
#define BYTECAST_DETAIL_READ_OP_HPP

// Reads: the asynchronous read operation, how one starts, and its synchronous twin (try_next).

#include <bytecast/detail/completion.hpp>
#include <bytecast/detail/config.hpp>
#include <bytecast/detail/operation.hpp>
#include <bytecast/detail/read_takers.hpp>
#include <bytecast/detail/reader_queue.hpp>
#include <bytecast/detail/wake_list.hpp>

#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

BYTECAST_NAMESPACE_BEGIN
namespace detail {

// One asynchronous read of a stream. It always completes by running on the handler's executor and
// takes its item there, so that a cancellation arriving before it runs (as `||` does when a timer
// wins) takes nothing: the item stays for the next read. With something to report it is deferred
// at once; otherwise it parks in its queue until the writer (or a cancellation) wakes it.
template <class Queue, class Taker, class Handler, class IoExecutor>
class read_op final : public read_op_base {
 public:
  using value_type = typename Taker::value_type;
  using executor_type = handler_executor_t<Handler, IoExecutor>;

  read_op(Handler&& handler, const IoExecutor& io_ex, std::shared_ptr<Queue> queue, Taker taker)
      : read_op_base(&read_op::do_action),
        handler_(std::move(handler)),
        executor_(asio::get_associated_executor(handler_, io_ex)),
        queue_(std::move(queue)),
        taker_(std::move(taker)) {}

  // Lets `slot` cancel this read. Strong.
  void connect(asio::cancellation_slot slot) {
    install_cancellation(slot, slot_, [q = queue_.get(), op = this] { q->cancel(op); });
  }

  [[nodiscard]] bool reads_nothing() const { return detail::reads_nothing(taker_); }

 private:
  static bool do_action(operation* base, action a) {
    auto* self = static_cast<read_op*>(base);
    switch (a) {
      case action::run:
        self->complete();
        break;
      case action::destroy:
        self->clear_slot();
        static_cast<void>(delete_op(self, self->handler_)); // the handler goes after the memory
        break;
      case action::post:
        asio::post(self->executor_, op_runner<>(self));
        break;
      case action::defer:
        asio::defer(self->executor_, op_runner<>(self));
        break;
      case action::dispatch:
        asio::dispatch(self->executor_, op_runner<>(self));
        break;
      case action::post_chain:
        asio::post(chain_executor(self->executor_), chain_runner(self));
        break;
      case action::prepare_park:
        self->prepare_park();
        break;
      case action::outside:
        return called_from_outside(self->executor_);
    }
    return false;
  }

  // While parked the read counts as outstanding work (a pending read keeps `io_context::run()`
  // going); only then is its context looked up, since only a parked read is woken with others.
  void prepare_park() noexcept {
    try {
      if (!work_) work_.emplace(track_work(executor_));
    } catch (...) {
      // Cannot track it: run() may return while it waits; the context's shutdown frees it.
    }
    context_ = context_key(executor_);
  }

  void clear_slot() noexcept {
    if (slot_.is_connected()) slot_.clear();
  }

  // On the handler's executor: takes the item, unless the read was cancelled (or its stream
  // destroyed) first.
  void complete() {
    Queue& q = *queue_;
    error_code ec;
    value_type value{};
    if (cancel_requested() || q.detached()) {
      ec = asio::error::operation_aborted;
    } else if (reads_nothing()) {
      // zero bytes, nothing taken
    } else if (!q.batch_empty()) {
      taker_.from_batch(q, ec, value);
    } else {
      const news n = q.refill(this);
      if (n == news::wait) return; // woken for nothing: parked again
      if (n == news::items)
        taker_.from_batch(q, ec, value);
      else if (n == news::aborted)
        ec = asio::error::operation_aborted;
      else
        taker_.from_news(q, n, ec, value);
    }
    q.release_reader();
    clear_slot();
    std::optional<tracked_executor_t<executor_type>> work(std::move(work_)); // until the handler returned
    std::shared_ptr<Queue> keep(std::move(queue_)); // a span may point into it
    Handler handler = delete_op(this, handler_);
    std::move(handler)(ec, std::move(value));
  }

  Handler handler_;
  executor_type executor_;
  std::optional<tracked_executor_t<executor_type>> work_; // only while parked
  std::shared_ptr<Queue> queue_;
  Taker taker_;
  asio::cancellation_slot slot_;
};

// Starts an asynchronous read of `queue` (null: a moved-from stream). The completion signature is
// `void(error_code, Taker::value_type)`.
template <class Queue, class Taker, class Handler, class IoExecutor>
void start_read(const std::shared_ptr<Queue>& queue, const IoExecutor& io_ex, Taker taker, Handler&& handler) {
  using signature = void(error_code, typename Taker::value_type);
  if (!queue) return immediate_completion<signature>::post(io_ex, std::forward<Handler>(handler), asio::error::bad_descriptor);
  if (!queue->acquire_reader())
    return immediate_completion<signature>::post(io_ex, std::forward<Handler>(handler), asio::error::already_started);
  // From here on this read holds the read position, and with it the batch.
  using op_type = read_op<Queue, Taker, std::decay_t<Handler>, IoExecutor>;
  std::decay_t<Handler> h(std::forward<Handler>(handler));
  auto slot = asio::get_associated_cancellation_slot(h);
  op_type* op = nullptr;
  try {
    op = new_op<op_type>(std::move(h), io_ex, queue, std::move(taker));
    try {
      op->connect(slot);
    } catch (...) {
      op->destroy();
      throw;
    }
    if (op->reads_nothing() || !queue->batch_empty() || !queue->park_unless_news(op))
      op->defer(); // if posting throws, its runner has freed the operation: nothing was taken
  } catch (...) {
    queue->release_reader();
    throw;
  }
}

// try_next: the synchronous twin of start_read; would_block when nothing is queued.
template <class Queue, class Taker>
typename Taker::value_type try_read(const std::shared_ptr<Queue>& queue, Taker taker, error_code& ec) {
  typename Taker::value_type value{};
  ec = {};
  if (!queue) {
    ec = asio::error::bad_descriptor;
    return value;
  }
  if (!queue->acquire_reader()) {
    ec = asio::error::already_started;
    return value;
  }
  struct release_on_exit {
    Queue& q;
    ~release_on_exit() { q.release_reader(); }
  } release{*queue};
  if (!queue->batch_empty()) {
    taker.from_batch(*queue, ec, value);
    return value;
  }
  const news n = queue->refill(nullptr);
  if (n == news::wait)
    ec = asio::error::would_block;
  else if (n == news::items)
    taker.from_batch(*queue, ec, value);
  else
    taker.from_news(*queue, n, ec, value);
  return value;
}

} // namespace detail
BYTECAST_NAMESPACE_END

#endif // BYTECAST_DETAIL_READ_OP_HPP
