# Builds and runs the consumer project in tests/consumer/ from scratch; one CTest test per MODE.
#   cmake -DMODE=<subdirectory|package|include_only> -DBYTECAST_SOURCE_DIR=... -DBYTECAST_BINARY_DIR=...
#         -DCONSUMER_SOURCE_DIR=... -DWORK_DIR=... -DCXX_COMPILER=... -DGENERATOR=...
#         [-DMAKE_PROGRAM=...] [-DCONFIG=...] -P run_consumer.cmake
#
# subdirectory  the consumer's CMakeLists does add_subdirectory(<bytecast source tree>)
# package       `cmake --install` of this build into WORK_DIR/prefix, then find_package(bytecast CONFIG)
# include_only  a copy of include/ and `<compiler> -std=c++20 -I <copy>/include main.cpp -pthread`
cmake_minimum_required(VERSION 3.21)

foreach(var IN ITEMS MODE BYTECAST_SOURCE_DIR BYTECAST_BINARY_DIR CONSUMER_SOURCE_DIR WORK_DIR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()

# Runs a command, echoing it first; any failure fails the test.
function(run)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "WORKING_DIRECTORY" "")
  if(NOT arg_WORKING_DIRECTORY)
    set(arg_WORKING_DIRECTORY "${WORK_DIR}")
  endif()
  list(JOIN arg_UNPARSED_ARGUMENTS " " shown)
  message(STATUS "[${MODE}] $ ${shown}")
  execute_process(COMMAND ${arg_UNPARSED_ARGUMENTS}
                  WORKING_DIRECTORY "${arg_WORKING_DIRECTORY}"
                  RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "[${MODE}] failed (${result}): ${shown}")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

if(MODE STREQUAL "include_only")
  # Nothing from CMake: the headers as copied files, the compiler, the system's Asio.
  file(COPY "${BYTECAST_SOURCE_DIR}/include" DESTINATION "${WORK_DIR}/copy")
  file(COPY "${CONSUMER_SOURCE_DIR}/main.cpp" DESTINATION "${WORK_DIR}")
  run("${CXX_COMPILER}" -std=c++20 -I "${WORK_DIR}/copy/include" main.cpp -pthread)
  run("${WORK_DIR}/a.out")
  return()
endif()

set(configure_args
  -S "${CONSUMER_SOURCE_DIR}"
  -B "${WORK_DIR}/build"
  "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
  "-DBYTECAST_CONSUMER_MODE=${MODE}")
if(GENERATOR)
  list(APPEND configure_args -G "${GENERATOR}")
endif()
if(MAKE_PROGRAM)
  list(APPEND configure_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
if(CONFIG)
  list(APPEND configure_args "-DCMAKE_BUILD_TYPE=${CONFIG}")
  set(config_args --config "${CONFIG}")
else()
  set(config_args "")
endif()

if(MODE STREQUAL "subdirectory")
  list(APPEND configure_args "-DBYTECAST_SOURCE_DIR=${BYTECAST_SOURCE_DIR}")
elseif(MODE STREQUAL "package")
  set(prefix "${WORK_DIR}/prefix")
  run("${CMAKE_COMMAND}" --install "${BYTECAST_BINARY_DIR}" --prefix "${prefix}" ${config_args})
  list(APPEND configure_args
    "-DCMAKE_PREFIX_PATH=${prefix}"
    "-DBYTECAST_EXPECTED_PREFIX=${prefix}"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
else()
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()

run("${CMAKE_COMMAND}" ${configure_args})
run("${CMAKE_COMMAND}" --build "${WORK_DIR}/build" ${config_args})

# Single-config generators put the program in the build directory, multi-config ones below it.
set(program "${WORK_DIR}/build/bytecast_consumer${CMAKE_EXECUTABLE_SUFFIX}")
if(CONFIG AND NOT EXISTS "${program}")
  set(program "${WORK_DIR}/build/${CONFIG}/bytecast_consumer${CMAKE_EXECUTABLE_SUFFIX}")
endif()
run("${program}")
