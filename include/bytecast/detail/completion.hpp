// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_COMPLETION_HPP
#define BYTECAST_DETAIL_COMPLETION_HPP

// Immediate completions: a handler bound to its arguments and posted, never invoked inline.

#include <bytecast/detail/config.hpp>

#include <tuple>
#include <type_traits>
#include <utility>

BYTECAST_NAMESPACE_BEGIN
namespace detail {

// A handler bound to its completion arguments, so that it can be posted as a nullary function
// while keeping the handler's associated executor and allocator (see the associator below).
template <class Handler, class... Args>
struct completion_binder {
  Handler handler_;
  std::tuple<Args...> args_;

  void operator()() {
    std::apply([this](Args&... args) { std::move(handler_)(std::move(args)...); }, args_);
  }
};

// Completes `handler` with `args` through its associated executor (else `ex`), never inline.
template <class Executor, class Handler, class... Args>
void post_completion(const Executor& ex, Handler&& handler, Args&&... args) {
  asio::post(ex, completion_binder<std::decay_t<Handler>, std::decay_t<Args>...>{
                     std::forward<Handler>(handler), {std::forward<Args>(args)...}});
}

// Completes an operation of signature `void(error_code, Values...)` at once with `ec` and
// value-initialised values (a read or write that cannot start: bad_descriptor, already_started).
template <class Signature>
struct immediate_completion;

template <class R, class... Values>
struct immediate_completion<R(error_code, Values...)> {
  template <class Executor, class Handler>
  static void post(const Executor& ex, Handler&& handler, error_code ec) {
    post_completion(ex, std::forward<Handler>(handler), ec, std::decay_t<Values>{}...);
  }
};

} // namespace detail
BYTECAST_NAMESPACE_END

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
