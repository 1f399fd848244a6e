// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_BYTECAST_HPP
#define BYTECAST_BYTECAST_HPP

// The umbrella header: everything in bytecast.

/// @mainpage bytecast
/// One writer, many asynchronous readers: bytecast broadcasts bytes (`byte_writer` /
/// `byte_stream`) and typed values (`typed_writer` / `typed_stream`) to any number of independent
/// readers on Asio, each reader getting every item, in order, at its own pace. Bound a reader's
/// queue with `writer_options`, replay recent chunks to late joiners, and watch for stalled
/// readers with `stalled_monitor`. The README has a tour; this is the reference of every public
/// header.

/// @namespace bytecast
/// Everything bytecast defines (in an inline namespace named after the Asio backend).

/// @namespace bytecast::error
/// bytecast's own error codes: `lagged` and `overflowed`, of the category named "bytecast".

#include <bytecast/detail/config.hpp>

#include <bytecast/byte_stream.hpp>
#include <bytecast/byte_writer.hpp>
#include <bytecast/chunk.hpp>
#include <bytecast/error.hpp>
#include <bytecast/options.hpp>
#include <bytecast/stalled_monitor.hpp>
#include <bytecast/typed.hpp>

#endif // BYTECAST_BYTECAST_HPP
