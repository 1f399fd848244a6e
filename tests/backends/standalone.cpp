// bytecast on standalone Asio, in a program that also holds bytecast on Boost.Asio (boost.cpp).
#include <bytecast/bytecast.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include "backends.hpp"

#define BACKEND_NAMESPACE on_standalone_asio
#include "broadcast.inc"
