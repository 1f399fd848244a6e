# hiredis for the Redis examples (examples/common/redis_source.hpp, examples/redis_publish):
# found by pkg-config, else by find_path/find_library. When found, the target
# bytecast_examples_hiredis exists and bytecast_examples_use_redis(<target>) links it and defines
# BYTECAST_EXAMPLES_WITH_REDIS. The library itself never needs it.
include_guard(GLOBAL)

find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(BYTECAST_HIREDIS QUIET IMPORTED_TARGET GLOBAL hiredis)
endif()
if(BYTECAST_HIREDIS_FOUND)
  add_library(bytecast_examples_hiredis INTERFACE)
  target_link_libraries(bytecast_examples_hiredis INTERFACE PkgConfig::BYTECAST_HIREDIS)
else()
  find_path(BYTECAST_HIREDIS_INCLUDE_DIR hiredis/async.h)
  find_library(BYTECAST_HIREDIS_LIBRARY hiredis)
  if(BYTECAST_HIREDIS_INCLUDE_DIR AND BYTECAST_HIREDIS_LIBRARY)
    add_library(bytecast_examples_hiredis INTERFACE)
    target_include_directories(bytecast_examples_hiredis INTERFACE "${BYTECAST_HIREDIS_INCLUDE_DIR}")
    target_link_libraries(bytecast_examples_hiredis INTERFACE "${BYTECAST_HIREDIS_LIBRARY}")
  endif()
endif()
if(TARGET bytecast_examples_hiredis)
  message(STATUS "bytecast examples: hiredis found: --redis and redis_publish are built")
else()
  message(STATUS "bytecast examples: hiredis not found (apt-get install libhiredis-dev): no --redis, no redis_publish")
endif()

find_program(BYTECAST_REDIS_SERVER redis-server)

function(bytecast_examples_use_redis target)
  if(TARGET bytecast_examples_hiredis)
    target_link_libraries(${target} PRIVATE bytecast_examples_hiredis)
    target_compile_definitions(${target} PRIVATE BYTECAST_EXAMPLES_WITH_REDIS)
  endif()
endfunction()
