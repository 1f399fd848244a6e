// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_QUEUE_CONTRACT_HPP
#define BYTECAST_DETAIL_QUEUE_CONTRACT_HPP

// What a reader's queue tells its reads (news) and its writer (queue_owner).

#include <bytecast/detail/config.hpp>

BYTECAST_NAMESPACE_BEGIN
namespace detail {

// What a read finds when its batch is empty (see reader_queue::refill).
enum class news {
  items,     // the batch was refilled
  wait,      // nothing yet: the read parked (try_next: would block)
  aborted,   // the read was cancelled, or its stream destroyed
  lagged,    // a drop_oldest gap, reported once
  sentinel,  // the writer closed and everything before was read
  failed,    // the writer closed with a reason and everything before was read (close_reason())
  eof,       // after the sentinel
  overflowed // cut off by a disconnect writer
};

// The writer, as its queues see it. A queue holds it weakly: a stream may outlive its writer.
template <class Queue>
class queue_owner {
 public:
  // A stream that holds the writer back (bounded, `wait`) made room: waiting writes may now fit.
  virtual void on_space() = 0;
  // The stream of `q` is gone: stop feeding and counting it. Called with no lock held.
  virtual void on_detach(const Queue* q) noexcept = 0;

 protected:
  ~queue_owner() = default;
};

} // namespace detail
BYTECAST_NAMESPACE_END

#endif // BYTECAST_DETAIL_QUEUE_CONTRACT_HPP
