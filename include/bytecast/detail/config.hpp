// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_CONFIG_HPP
#define BYTECAST_DETAIL_CONFIG_HPP

// The backend and bytecast's namespace. Standalone Asio is the default; with
// BYTECAST_USE_BOOST_ASIO defined (the CMake option of the same name sets it), Boost.Asio with
// boost::system::error_code. Inside namespace bytecast, `asio` names the backend's namespace and
// `error_code` / `system_error` its error types, so every header is written once for both.
//
// Everything bytecast defines lives in an inline namespace named after the backend, so that one
// program may contain translation units built for each (their types never share a mangled name).
// Users still write `bytecast::byte_writer`.
#if defined(BYTECAST_USE_BOOST_ASIO)
#  define BYTECAST_BACKEND_NAMESPACE boost_asio
#else
#  define BYTECAST_BACKEND_NAMESPACE asio_standalone
#endif
#define BYTECAST_NAMESPACE_BEGIN                                                                       \
  namespace bytecast {                                                                                 \
  inline namespace BYTECAST_BACKEND_NAMESPACE {
#define BYTECAST_NAMESPACE_END                                                                         \
  }                                                                                                    \
  }

#if defined(BYTECAST_USE_BOOST_ASIO)

// Boost 1.81 (Asio 1.26) detects clang 14's C++20 coroutines by itself; with clang and Boost 1.79
// or 1.80, asio::awaitable needs BOOST_ASIO_HAS_CO_AWAIT=1 and BOOST_ASIO_HAS_STD_COROUTINE=1.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/associator.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/defer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/recycling_allocator.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/version.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#if BOOST_ASIO_VERSION < 102200
#  error "bytecast needs Boost.Asio 1.22 or newer (Boost 1.79+; Debian: apt-get install libboost1.81-dev)"
#endif

#define BYTECAST_ASIO_VERSION BOOST_ASIO_VERSION
#define BYTECAST_ASIO_NAMESPACE_BEGIN namespace boost::asio {
#define BYTECAST_ASIO_NAMESPACE_END }

BYTECAST_NAMESPACE_BEGIN
namespace asio = ::boost::asio;
using error_code = ::boost::system::error_code;
using error_category = ::boost::system::error_category;
using system_error = ::boost::system::system_error;
BYTECAST_NAMESPACE_END

#else // standalone Asio

// Asio 1.22 recognises coroutines on clang only through __cpp_coroutines, which clang 14 does not
// define in C++20 mode: say what the compiler has, before Asio's config header is seen.
#if defined(__clang__) && defined(__cpp_impl_coroutine) && __has_include(<coroutine>)
#  if !defined(ASIO_HAS_CO_AWAIT) && !defined(ASIO_DISABLE_CO_AWAIT)
#    if defined(ASIO_DETAIL_CONFIG_HPP)
#      error "bytecast: Asio was included before bytecast without coroutine support (clang + Asio 1.22). \
Include <bytecast/bytecast.hpp> before any Asio header, or define ASIO_HAS_CO_AWAIT=1 and ASIO_HAS_STD_COROUTINE=1 on the command line."
#    endif
#    define ASIO_HAS_CO_AWAIT 1
#  endif
#  if !defined(ASIO_HAS_STD_COROUTINE) && !defined(ASIO_DISABLE_STD_COROUTINE)
#    define ASIO_HAS_STD_COROUTINE 1
#  endif
#endif

#include <asio/any_io_executor.hpp>
#include <asio/associated_allocator.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/associator.hpp>
#include <asio/awaitable.hpp>
#include <asio/async_result.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/buffer.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/defer.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/execution.hpp>
#include <asio/execution_context.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/query.hpp>
#include <asio/recycling_allocator.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/version.hpp>

#include <system_error>

#if ASIO_VERSION < 102200
#  error "bytecast needs Asio 1.22 or newer (Debian: apt-get install libasio-dev)"
#endif

#define BYTECAST_ASIO_VERSION ASIO_VERSION
#define BYTECAST_ASIO_NAMESPACE_BEGIN namespace asio {
#define BYTECAST_ASIO_NAMESPACE_END }

BYTECAST_NAMESPACE_BEGIN
namespace asio = ::asio;
using error_code = std::error_code;
using error_category = std::error_category;
using system_error = std::system_error;
BYTECAST_NAMESPACE_END

#endif // BYTECAST_USE_BOOST_ASIO

#endif // BYTECAST_DETAIL_CONFIG_HPP
