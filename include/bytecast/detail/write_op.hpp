// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_WRITE_OP_HPP
#define BYTECAST_DETAIL_WRITE_OP_HPP

// Asynchronous writes: the operation, parked while a bounded `wait` writer has a full stream, and
// how one starts.

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

 protected:
  write_op_base(func_type fn, Item&& i, std::size_t w) noexcept : operation(fn), item(std::move(i)), weight(w) {}
  ~write_op_base() = default;
};

// Completion: `Signature` is `void(error_code, std::size_t)` (bytes: the size written, 0 on error)
// or `void(error_code)` (typed values).
template <class Item, class Signature, class Handler, class IoExecutor>
class write_op final : public write_op_base<Item> {
  using base = write_op_base<Item>;
  using action = operation::action;

 public:
  using executor_type = handler_executor_t<Handler, IoExecutor>;

  write_op(Handler&& handler, const IoExecutor& io_ex, Item&& item, std::size_t weight)
      : base(&write_op::do_action, std::move(item), weight),
        handler_(std::move(handler)),
        work_(track_work(asio::get_associated_executor(handler_, io_ex))) {}

  // Lets `slot` cancel this write while it waits (`cancel()`: the writer's cancel_write). Strong.
  template <class Cancel>
  void connect(asio::cancellation_slot slot, Cancel cancel) {
    install_cancellation(slot, slot_, std::move(cancel));
  }

 private:
  static bool do_action(operation* b, action a) {
    auto* self = static_cast<write_op*>(b);
    if (a == action::post) {
      tracked_executor_t<executor_type> ex = self->work_;
      asio::post(ex, op_runner<>(self));
      return false;
    }
    // run or destroy. The slot is cleared here, on the handler's executor, never by a reader's
    // thread that delivered the write.
    if (self->slot_.is_connected()) self->slot_.clear();
    const error_code ec = self->result;
    const std::size_t n = ec ? 0 : self->weight;
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

// Starts an asynchronous write of `item` on `core` (null: a moved-from writer), which parks it or
// completes it; `weight` counts against the queue limits.
template <class Signature, class Core, class Item, class Handler, class IoExecutor>
void start_write(const std::shared_ptr<Core>& core, const IoExecutor& io_ex, Item&& item, std::size_t weight,
                 Handler&& handler) {
  if (!core) return immediate_completion<Signature>::post(io_ex, std::forward<Handler>(handler), asio::error::bad_descriptor);
  using op_type = write_op<Item, Signature, std::decay_t<Handler>, IoExecutor>;
  std::decay_t<Handler> h(std::forward<Handler>(handler));
  auto slot = asio::get_associated_cancellation_slot(h);
  op_type* op = new_op<op_type>(std::move(h), io_ex, std::move(item), weight);
  try {
    op->connect(slot, [c = std::weak_ptr<Core>(core), op] {
      if (auto locked = c.lock()) locked->cancel_write(op);
    });
  } catch (...) {
    op->destroy();
    throw;
  }
  core->async_publish(op);
}

} // namespace detail
BYTECAST_NAMESPACE_END

#endif // BYTECAST_DETAIL_WRITE_OP_HPP
