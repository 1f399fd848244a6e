# bytecast_dev_options: warnings and sanitizers for bytecast's OWN tests, examples and
# benchmarks. Never linked to the public target, never installed or exported.

set(BYTECAST_SANITIZE "" CACHE STRING
    "Sanitizers for bytecast's tests/examples/benchmarks: empty, \"address,undefined\" or \"thread\"")
set_property(CACHE BYTECAST_SANITIZE PROPERTY STRINGS "" "address,undefined" "thread")
option(BYTECAST_WERROR "Treat warnings as errors in bytecast's tests/examples/benchmarks" ON)

add_library(bytecast_dev_options INTERFACE)

if(MSVC)
  target_compile_options(bytecast_dev_options INTERFACE /W4 /permissive- $<$<BOOL:${BYTECAST_WERROR}>:/WX>)
else()
  target_compile_options(bytecast_dev_options INTERFACE
    -Wall -Wextra -Wpedantic $<$<BOOL:${BYTECAST_WERROR}>:-Werror>)
endif()

if(NOT BYTECAST_SANITIZE STREQUAL "")
  if(MSVC)
    message(FATAL_ERROR "BYTECAST_SANITIZE is supported with GCC and Clang only")
  endif()
  string(REPLACE "," ";" _bytecast_sanitizers "${BYTECAST_SANITIZE}")
  foreach(_bytecast_sanitizer IN LISTS _bytecast_sanitizers)
    if(NOT _bytecast_sanitizer MATCHES "^(address|undefined|thread|leak)$")
      message(FATAL_ERROR "BYTECAST_SANITIZE: unknown sanitizer '${_bytecast_sanitizer}' "
                          "(use \"address,undefined\" or \"thread\")")
    endif()
  endforeach()
  if("thread" IN_LIST _bytecast_sanitizers AND "address" IN_LIST _bytecast_sanitizers)
    message(FATAL_ERROR "BYTECAST_SANITIZE: ThreadSanitizer cannot be combined with AddressSanitizer")
  endif()

  set(_bytecast_sanitize_flags -fsanitize=${BYTECAST_SANITIZE} -fno-omit-frame-pointer)
  if("undefined" IN_LIST _bytecast_sanitizers)
    # Make every UB report fatal, so a test cannot pass with a sanitizer error in its log.
    list(APPEND _bytecast_sanitize_flags -fno-sanitize-recover=all)
    # Clang's -fsanitize=function (part of "undefined") breaks on coroutines: the assembler fails
    # with "Cannot represent a difference across sections" (seen with clang 14).
    if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
      list(APPEND _bytecast_sanitize_flags -fno-sanitize=function)
    endif()
  endif()
  target_compile_options(bytecast_dev_options INTERFACE ${_bytecast_sanitize_flags})
  target_link_options(bytecast_dev_options INTERFACE ${_bytecast_sanitize_flags})
  message(STATUS "bytecast: tests, examples and benchmarks built with -fsanitize=${BYTECAST_SANITIZE}")
  unset(_bytecast_sanitize_flags)
  unset(_bytecast_sanitizers)
  unset(_bytecast_sanitizer)
endif()
