// The Asio headers the examples use, from the backend bytecast is built for: standalone Asio, or
// Boost.Asio when BYTECAST_USE_BOOST_ASIO is defined (the CMake option of the same name). Under
// Boost.Asio it also declares `namespace asio = boost::asio;`, so the examples write `asio::...`
// and `bytecast::error_code` (std::error_code on standalone Asio) on both backends.
#ifndef BYTECAST_EXAMPLES_ASIO_BACKEND_HPP
#define BYTECAST_EXAMPLES_ASIO_BACKEND_HPP

#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#if defined(BYTECAST_USE_BOOST_ASIO)

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#if BOOST_ASIO_VERSION >= 102400
#include <boost/asio/as_tuple.hpp>
#else
#include <boost/asio/experimental/as_tuple.hpp>
#endif

namespace asio = boost::asio;

#else // standalone Asio

#include <asio/bind_cancellation_slot.hpp>
#include <asio/buffer.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/redirect_error.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#if ASIO_VERSION >= 102400
#include <asio/as_tuple.hpp>
#else
#include <asio/experimental/as_tuple.hpp>
#endif

#endif // BYTECAST_USE_BOOST_ASIO

#endif // BYTECAST_EXAMPLES_ASIO_BACKEND_HPP
