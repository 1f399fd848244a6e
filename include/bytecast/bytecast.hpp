// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_BYTECAST_HPP
#define BYTECAST_BYTECAST_HPP

// The umbrella header: everything in bytecast.
#include <bytecast/detail/config.hpp>

#include <bytecast/byte_stream.hpp>
#include <bytecast/byte_writer.hpp>
#include <bytecast/chunk.hpp>
#include <bytecast/error.hpp>
#include <bytecast/options.hpp>
#include <bytecast/stalled_monitor.hpp>
#include <bytecast/typed.hpp>

#endif // BYTECAST_BYTECAST_HPP
