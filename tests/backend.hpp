// The Asio backend for bytecast's own tests, examples and benchmarks: standalone Asio, or
// Boost.Asio when BYTECAST_USE_BOOST_ASIO is defined (see include/bytecast/detail/config.hpp).
// Every test source includes this instead of Asio headers, and writes `asio::...` at global
// scope and `bytecast::error_code` / `bytecast::system_error` for the backend's error types.
#pragma once

// The umbrella header comes first: it sets up what Asio needs (coroutine detection on clang 14)
// before any Asio header is seen.
#include <bytecast/bytecast.hpp>

#if defined(BYTECAST_USE_BOOST_ASIO)

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/version.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#if BOOST_ASIO_VERSION >= 102400
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#else
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/experimental/deferred.hpp>
#endif
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

namespace asio = boost::asio;

#else // standalone Asio

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/buffer.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/error.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <asio/version.hpp>
#include <asio/write.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#if ASIO_VERSION >= 102400
#include <asio/as_tuple.hpp>
#include <asio/deferred.hpp>
#else
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/deferred.hpp>
#endif

#include <system_error>

#endif // BYTECAST_USE_BOOST_ASIO
