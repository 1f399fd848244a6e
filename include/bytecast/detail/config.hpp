// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_CONFIG_HPP
#define BYTECAST_DETAIL_CONFIG_HPP

// Asio 1.22 only recognises coroutine support on clang through the Coroutines TS
// (`__cpp_coroutines`), which clang 14 no longer defines in C++20 mode. Tell Asio
// what the compiler really has, so that `asio::awaitable` works with nothing but
// `-std=c++20`. This must happen before Asio's config header is seen.
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
#include <asio/async_result.hpp>
#include <asio/buffer.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/defer.hpp>
#include <asio/error.hpp>
#include <asio/execution.hpp>
#include <asio/execution_context.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/query.hpp>
#include <asio/recycling_allocator.hpp>
#include <asio/version.hpp>

#if ASIO_VERSION < 102200
#  error "bytecast needs Asio 1.22 or newer (Debian: apt-get install libasio-dev)"
#endif

#endif // BYTECAST_DETAIL_CONFIG_HPP
