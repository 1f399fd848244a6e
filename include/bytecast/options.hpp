// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_OPTIONS_HPP
#define BYTECAST_OPTIONS_HPP

#include <bytecast/detail/config.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>

BYTECAST_NAMESPACE_BEGIN

/// What a bounded writer does when a stream's queue has no room for a new chunk.
enum class overflow_policy {
  wait,        ///< the writer waits (async) or fails with `would_block` (sync)
  drop_oldest, ///< the full stream drops its oldest chunks and reports `error::lagged` once
  disconnect   ///< the full stream is cut off and reports `error::overflowed`
};

/// Optional last constructor argument of every writer.
struct writer_options {
  std::size_t queue_limit = 0; ///< per stream, bytes (byte writers) or items (typed); 0 = unbounded
  overflow_policy on_overflow = overflow_policy::wait; ///< what a full stream does
  std::size_t replay_limit = 0; ///< recent chunks kept for `stream(replay)`; 0 = no replay
};

/// Per-stream choices: the last argument of `writer.stream(...)`. Unset members take the writer's
/// `writer_options`.
struct stream_options {
  // Every member has an initializer, so that `stream({.replay = true})` draws no
  // -Wmissing-field-initializers warning.
  std::optional<std::size_t> queue_limit{};     ///< unset: the writer's queue_limit; 0: unbounded
  std::optional<overflow_policy> on_overflow{}; ///< unset: the writer's on_overflow
  bool replay = false;                          ///< start with the retained recent chunks
  std::optional<std::uint64_t> from_position{}; ///< byte writers: start at this position (API section 7)
  bool align_to_sync_points = false;            ///< byte writers: start and resume at sync points (section 7)
};

/// The type of `bytecast::replay`.
struct replay_t {
  explicit replay_t() = default;
};

/// Tag for `writer.stream(bytecast::replay)`: start with the retained recent chunks.
inline constexpr replay_t replay{};

/// The type of `bytecast::sync_point`.
struct sync_point_t {
  explicit sync_point_t() = default;
};

/// Tag for `writer.write(data, bytecast::sync_point)`: the chunk is a sync point, a place where a
/// reader may start (a key frame, the start of a record group); see `align_to_sync_points`.
inline constexpr sync_point_t sync_point{};

BYTECAST_NAMESPACE_END

#endif // BYTECAST_OPTIONS_HPP
