// The two translation units of the two-backend test, as main.cpp sees them: no Asio here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#define BYTECAST_TWO_BACKENDS_RESULT                                                                   \
  struct result {                                                                                      \
    std::vector<std::string> received; /* per reader: the chunks, each followed by '|' */              \
    const void* category = nullptr;    /* &bytecast::error::get_category() of that build */            \
    std::string lagged_message;                                                                        \
    std::uint64_t bytes_written = 0;                                                                   \
  };                                                                                                   \
  result broadcast(const std::vector<std::string>& chunks);

namespace on_standalone_asio {
BYTECAST_TWO_BACKENDS_RESULT
}
namespace on_boost_asio {
BYTECAST_TWO_BACKENDS_RESULT
}
