// The one translation unit that holds Catch2's main(); the *_test.cpp files only hold tests.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
