// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_COMPLETION_HPP
#define BYTECAST_DETAIL_COMPLETION_HPP

#include <bytecast/detail/config.hpp>

#include <tuple>
#include <type_traits>
#include <utility>

namespace bytecast::detail {

// A handler bound to its completion arguments, so that it can be posted as a
// nullary function while keeping the handler's associated executor and allocator.
template <class Handler, class... Args>
struct completion_binder {
  Handler handler_;
  std::tuple<Args...> args_;

  void operator()() {
    std::apply([this](Args&... args) { std::move(handler_)(std::move(args)...); }, args_);
  }
};

// Completes `handler` with `args` through its associated executor, never inline.
// `defer` marks the completion as a continuation of the caller (cheaper when the
// caller runs on the same executor, e.g. a coroutine starting a read).
template <class Executor, class Handler, class... Args>
void post_completion(const Executor& ex, Handler&& handler, Args&&... args) {
  asio::post(ex, completion_binder<std::decay_t<Handler>, std::decay_t<Args>...>{
                     std::forward<Handler>(handler), {std::forward<Args>(args)...}});
}

template <class Executor, class Handler, class... Args>
void defer_completion(const Executor& ex, Handler&& handler, Args&&... args) {
  asio::defer(ex, completion_binder<std::decay_t<Handler>, std::decay_t<Args>...>{
                      std::forward<Handler>(handler), {std::forward<Args>(args)...}});
}

} // namespace bytecast::detail

BYTECAST_ASIO_NAMESPACE_BEGIN

template <template <class, class> class Associator, class Handler, class... Args, class DefaultCandidate>
struct associator<Associator, bytecast::detail::completion_binder<Handler, Args...>, DefaultCandidate>
    : Associator<Handler, DefaultCandidate> {
  static auto get(const bytecast::detail::completion_binder<Handler, Args...>& b,
                  const DefaultCandidate& c = DefaultCandidate()) noexcept
      -> decltype(Associator<Handler, DefaultCandidate>::get(b.handler_, c)) {
    return Associator<Handler, DefaultCandidate>::get(b.handler_, c);
  }
};

BYTECAST_ASIO_NAMESPACE_END

#endif // BYTECAST_DETAIL_COMPLETION_HPP
