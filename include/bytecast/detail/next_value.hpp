// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_NEXT_VALUE_HPP
#define BYTECAST_DETAIL_NEXT_VALUE_HPP

// The value type V of a stream whose async_next completes with `void(error_code, V)`, found by
// asking the stream in an unevaluated context (as Asio's parallel_group probes a signature).

#include <bytecast/detail/config.hpp>

#include <type_traits>
#include <utility>

BYTECAST_NAMESPACE_BEGIN
namespace detail {

// A completion token that only reveals an operation's completion signature.
struct signature_probe {};

template <class Signature>
struct probed_signature {
  using type = Signature;
};

template <class Signature>
struct completion_value;

template <class R, class Value>
struct completion_value<R(error_code, Value)> {
  using type = std::decay_t<Value>;
};

template <class Stream>
using next_value_t = typename completion_value<
    typename decltype(std::declval<Stream&>().async_next(std::declval<signature_probe>()))::type>::type;

} // namespace detail
BYTECAST_NAMESPACE_END

BYTECAST_ASIO_NAMESPACE_BEGIN
template <class Signature>
class async_result<bytecast::detail::signature_probe, Signature> {
 public:
  template <class Initiation, class... Args>
  static bytecast::detail::probed_signature<Signature> initiate(Initiation&&, bytecast::detail::signature_probe,
                                                               Args&&...) {
    return {};
  }
};
BYTECAST_ASIO_NAMESPACE_END

#endif // BYTECAST_DETAIL_NEXT_VALUE_HPP
