// The servers' log: one line on stderr per event, prefixed with the program's name.
#ifndef BYTECAST_EXAMPLES_FANOUT_LOG_HPP
#define BYTECAST_EXAMPLES_FANOUT_LOG_HPP

#include <iostream>
#include <string>
#include <string_view>

namespace fanout {

/// `log("feed: started")` writes "http_fanout: feed: started" on stderr, whole and flushed (the
/// tests wait for lines).
class logger {
 public:
  explicit logger(std::string_view program) : program_(program) {}

  void operator()(std::string_view text) const {
    std::string line;
    line.append(program_).append(": ").append(text).append("\n");
    std::cerr << line << std::flush;
  }

  [[nodiscard]] const std::string& program() const noexcept { return program_; }

 private:
  std::string program_;
};

} // namespace fanout

#endif // BYTECAST_EXAMPLES_FANOUT_LOG_HPP
