// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_WRITE_OP_HPP
#define BYTECAST_DETAIL_WRITE_OP_HPP

// The writer's asynchronous operations: a write, parked while a bounded `wait` stream is full, and
// a wait for streams (async_wait_for_streams / async_wait_no_streams); how each starts.

#include <bytecast/detail/completion.hpp>
#include <bytecast/detail/config.hpp>
#include <bytecast/detail/operation.hpp>

#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

BYTECAST_NAMESPACE_BEGIN
namespace detail {

// A write as the writer sees it. It owns its item (the caller's bytes were already copied).
template <class Item>
class write_op_base : public operation {
 public:
  Item item;
  std::size_t weight;
  error_code result; // set by the writer before it posts the completion

  // The size a byte write completes with.
  [[nodiscard]] std::size_t completion_size() const noexcept { return result ? 0 : weight; }

 protected:
  write_op_base(func_type fn, Item&& i, std::size_t w) noexcept : operation(fn), item(std::move(i)), weight(w) {}
  ~write_op_base() = default;
};

// A wait for the number of live streams: until at least `at_least` are live, or, `for_none`,
// until none is.
class stream_wait_base : public operation {
 public:
  std::size_t at_least;
  bool for_none;
  error_code result; // set by the writer before it posts the completion

  [[nodiscard]] bool satisfied_by(std::size_t live) const noexcept { return for_none ? live == 0 : live >= at_least; }

 protected:
  stream_wait_base(func_type fn, std::size_t n, bool none) noexcept : operation(fn), at_least(n), for_none(none) {}
  ~stream_wait_base() = default;
};

// One of the above (`Base`), completing with `Signature`: `void(error_code, std::size_t)` (byte
// writes: the size written, 0 on error) or `void(error_code)`. The writer posts it when it is done.
template <class Base, class Signature, class Handler, class IoExecutor>
class writer_op final : public Base {
  using action = operation::action;

 public:
  using executor_type = handler_executor_t<Handler, IoExecutor>;

  template <class... BaseArgs>
  writer_op(Handler&& handler, const IoExecutor& io_ex, BaseArgs&&... args)
      : Base(&writer_op::do_action, std::forward<BaseArgs>(args)...),
        handler_(std::move(handler)),
        work_(track_work(asio::get_associated_executor(handler_, io_ex))) {}

  // Lets `slot` withdraw this operation while the writer holds it (`cancel()`). Strong.
  template <class Cancel>
  void connect(asio::cancellation_slot slot, Cancel cancel) {
    install_cancellation(slot, slot_, std::move(cancel));
  }

 private:
  static bool do_action(operation* b, action a) {
    auto* self = static_cast<writer_op*>(b);
    if (a == action::post) {
      tracked_executor_t<executor_type> ex = self->work_;
      asio::post(ex, op_runner<>(self));
      return false;
    }
    // run or destroy. The slot is cleared here, on the handler's executor, never by a reader's
    // thread that made room for a write.
    if (self->slot_.is_connected()) self->slot_.clear();
    const error_code ec = self->result;
    std::size_t n = 0;
    if constexpr (std::is_same_v<Signature, void(error_code, std::size_t)>) n = self->completion_size();
    tracked_executor_t<executor_type> work(std::move(self->work_)); // until the handler returned
    Handler handler = delete_op(self, self->handler_);
    if (a == action::run) {
      if constexpr (std::is_same_v<Signature, void(error_code, std::size_t)>)
        std::move(handler)(ec, n);
      else
        std::move(handler)(ec);
    }
    return false;
  }

  Handler handler_;
  tracked_executor_t<executor_type> work_;
  asio::cancellation_slot slot_;
};

// Makes the operation for `handler` and lets its cancellation slot reach `core`'s `withdraw(op)`.
template <class Base, class Signature, class Core, class Handler, class IoExecutor, class... BaseArgs>
[[nodiscard]] Base* make_writer_op(const std::shared_ptr<Core>& core, const IoExecutor& io_ex, Handler&& handler,
                                   BaseArgs&&... args) {
  using op_type = writer_op<Base, Signature, std::decay_t<Handler>, IoExecutor>;
  std::decay_t<Handler> h(std::forward<Handler>(handler));
  auto slot = asio::get_associated_cancellation_slot(h);
  op_type* op = new_op<op_type>(std::move(h), io_ex, std::forward<BaseArgs>(args)...);
  try {
    op->connect(slot, [c = std::weak_ptr<Core>(core), op] {
      if (auto locked = c.lock()) locked->withdraw(static_cast<Base*>(op));
    });
  } catch (...) {
    op->destroy();
    throw;
  }
  return op;
}

// Starts an asynchronous write of `item` on `core` (null: a moved-from writer), which delivers,
// parks or completes it; `weight` counts against the queue limits.
template <class Signature, class Core, class Item, class Handler, class IoExecutor>
void start_write(const std::shared_ptr<Core>& core, const IoExecutor& io_ex, Item&& item, std::size_t weight,
                 Handler&& handler) {
  if (!core) return immediate_completion<Signature>::post(io_ex, std::forward<Handler>(handler), asio::error::bad_descriptor);
  core->async_publish(make_writer_op<write_op_base<Item>, Signature>(core, io_ex, std::forward<Handler>(handler),
                                                                     std::move(item), weight));
}

// Starts a wait for streams on `core` (null: a moved-from writer): at least `n`, or `for_none`.
template <class Core, class Handler, class IoExecutor>
void start_stream_wait(const std::shared_ptr<Core>& core, const IoExecutor& io_ex, std::size_t n, bool for_none,
                       Handler&& handler) {
  using signature = void(error_code);
  if (!core) return immediate_completion<signature>::post(io_ex, std::forward<Handler>(handler), asio::error::bad_descriptor);
  core->async_wait_streams(
      make_writer_op<stream_wait_base, signature>(core, io_ex, std::forward<Handler>(handler), n, for_none));
}

} // namespace detail
BYTECAST_NAMESPACE_END

#endif // BYTECAST_DETAIL_WRITE_OP_HPP
