// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_ERROR_HPP
#define BYTECAST_ERROR_HPP

#include <bytecast/detail/config.hpp>

#include <string>
#include <system_error>

BYTECAST_NAMESPACE_BEGIN
namespace error {

/// bytecast's own error conditions; everything else uses Asio's codes (`eof`, `broken_pipe`,
/// `would_block`, `timed_out`, `operation_aborted`, ...).
enum errors {
  /// A bounded `drop_oldest` stream lost chunks because its reader fell behind.
  lagged = 1,
  /// A bounded `disconnect` stream was cut off because its reader fell behind.
  overflowed
};

/// The category of `bytecast::error::errors`, named "bytecast", with readable messages.
[[nodiscard]] inline const error_category& get_category() noexcept {
  class category final : public error_category {
   public:
    [[nodiscard]] const char* name() const noexcept override { return "bytecast"; }
    [[nodiscard]] std::string message(int value) const override {
      switch (value) {
        case lagged:
          return "reader lagged behind: oldest chunks were dropped";
        case overflowed:
          return "reader overflowed its queue limit and was disconnected";
        default:
          return "bytecast error";
      }
    }
  };
  static const category instance;
  return instance;
}

/// An error code of bytecast's category, so that `error_code ec = bytecast::error::lagged;` works.
[[nodiscard]] inline error_code make_error_code(errors e) noexcept {
  return {static_cast<int>(e), get_category()};
}

} // namespace error
BYTECAST_NAMESPACE_END

/// @cond
#if defined(BYTECAST_USE_BOOST_ASIO)
template <>
struct boost::system::is_error_code_enum<bytecast::error::errors> : std::true_type {};
#else
template <>
struct std::is_error_code_enum<bytecast::error::errors> : std::true_type {};
#endif
/// @endcond

#endif // BYTECAST_ERROR_HPP
