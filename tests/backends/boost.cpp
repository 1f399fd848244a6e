// bytecast on Boost.Asio, in a program that also holds bytecast on standalone Asio (standalone.cpp).
#define BYTECAST_USE_BOOST_ASIO 1
#include <bytecast/bytecast.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "backends.hpp"

namespace asio = boost::asio;

#define BACKEND_NAMESPACE on_boost_asio
#include "broadcast.inc"
