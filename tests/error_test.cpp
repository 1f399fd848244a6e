// Tests for bytecast's own error codes (error.hpp): bytecast::error::lagged and
// bytecast::error::overflowed, their "bytecast" category and their bytecast::error_code conversion.
#include "test_util.hpp"

#include <set>
#include <type_traits>

using namespace bytecast_test;

// The backend's error library: std's, or Boost.System's with Boost.Asio.
#if defined(BYTECAST_USE_BOOST_ASIO)
namespace errlib = boost::system;
#else
namespace errlib = std;
#endif

TEST_CASE("error: lagged and overflowed are the documented enumerators of bytecast::error::errors", "[error]") {
  CHECK(static_cast<int>(bytecast::error::lagged) == 1);
  CHECK(static_cast<int>(bytecast::error::overflowed) == 2);
  CHECK(std::is_enum_v<bytecast::error::errors>);
}

TEST_CASE("error: the errors enum is an error code enum and converts implicitly to bytecast::error_code", "[error]") {
  CHECK(errlib::is_error_code_enum<bytecast::error::errors>::value);
  CHECK(std::is_convertible_v<bytecast::error::errors, bytecast::error_code>);
  // Not an error *condition* enum: comparisons go through the code, not a condition.
  CHECK_FALSE(errlib::is_error_condition_enum<bytecast::error::errors>::value);

  bytecast::error_code ec = bytecast::error::lagged;
  CHECK(ec);
  CHECK(ec.value() == 1);
  CHECK(ec == bytecast::error::lagged);
  CHECK(ec != bytecast::error::overflowed);

  ec = bytecast::error::overflowed;
  CHECK(ec.value() == 2);
  CHECK(ec == bytecast::error::overflowed);
  CHECK(ec != bytecast::error::lagged);

  // make_error_code is found by argument-dependent lookup, as bytecast::error_code's constructor needs.
  CHECK(make_error_code(bytecast::error::lagged) == bytecast::error::lagged);
  CHECK(noexcept(bytecast::error::make_error_code(bytecast::error::lagged)));
}

TEST_CASE("error: both codes belong to one category named \"bytecast\"", "[error]") {
  const bytecast::error_code lagged = bytecast::error::lagged;
  const bytecast::error_code overflowed = bytecast::error::overflowed;
  CHECK(std::string_view(lagged.category().name()) == "bytecast");
  CHECK(&lagged.category() == &overflowed.category());
  CHECK(&lagged.category() == &bytecast::error::get_category());
  CHECK(&bytecast::error::get_category() == &bytecast::error::get_category());
  CHECK(noexcept(bytecast::error::get_category()));
}

TEST_CASE("error: the messages are readable and tell the two codes apart", "[error]") {
  const std::string lagged = bytecast::error_code(bytecast::error::lagged).message();
  const std::string overflowed = bytecast::error_code(bytecast::error::overflowed).message();
  CAPTURE(lagged, overflowed);
  CHECK(lagged.size() > 10);
  CHECK(overflowed.size() > 10);
  CHECK(lagged != overflowed);
  CHECK(lagged.find("lag") != std::string::npos);
  CHECK(overflowed.find("disconnect") != std::string::npos);
  // A value the category does not know still gets a message, never an empty string or a throw.
  CHECK_FALSE(bytecast::error::get_category().message(12345).empty());
}

TEST_CASE("error: bytecast codes never compare equal to Asio's or the system's codes of the same value", "[error]") {
  const bytecast::error_code lagged = bytecast::error::lagged;
  const bytecast::error_code overflowed = bytecast::error::overflowed;
  CHECK(lagged != bytecast::error_code(1, errlib::system_category()));
  CHECK(lagged != bytecast::error_code(1, errlib::generic_category()));
  CHECK(overflowed != bytecast::error_code(2, errlib::system_category()));
  // Asio's codes the library also reports.
  for (bytecast::error_code asio_code :
       {bytecast::error_code(asio::error::eof), bytecast::error_code(asio::error::would_block),
        bytecast::error_code(asio::error::broken_pipe), bytecast::error_code(asio::error::operation_aborted),
        bytecast::error_code(asio::error::timed_out)}) {
    CAPTURE(asio_code);
    CHECK(lagged != asio_code);
    CHECK(overflowed != asio_code);
  }
  // Distinct as keys of an ordered container, too.
  std::set<bytecast::error_code> codes{lagged, overflowed, bytecast::error_code(asio::error::eof)};
  CHECK(codes.size() == 3);
}

TEST_CASE("error: the codes travel in a bytecast::system_error", "[error]") {
  try {
    throw bytecast::system_error(bytecast::error::overflowed, "reading");
  } catch (const bytecast::system_error& e) {
    CHECK(e.code() == bytecast::error::overflowed);
    CHECK(std::string_view(e.what()).find("reading") != std::string_view::npos);
  }
  try {
    throw bytecast::system_error(make_error_code(bytecast::error::lagged));
  } catch (const bytecast::system_error& e) {
    CHECK(e.code() == bytecast::error::lagged);
    CHECK(std::string_view(e.code().category().name()) == "bytecast");
  }
}
