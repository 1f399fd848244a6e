# Findasio.cmake -- locate standalone Asio (header-only, no CMake package of its own).
#
# Result variables:
#   asio_FOUND, asio_VERSION, asio_INCLUDE_DIR
# Imported target:
#   asio::asio   INTERFACE: include directory, ASIO_STANDALONE, Threads::Threads
#
# Hints: set asio_ROOT (or ASIO_ROOT) or asio_INCLUDE_DIR to a directory holding asio.hpp.

# Another Find module or package (a parent project, vcpkg, ...) may already have made the target;
# reuse it rather than defining a second, conflicting one.
if(TARGET asio::asio)
  if(NOT asio_VERSION)
    get_target_property(_asio_existing_dirs asio::asio INTERFACE_INCLUDE_DIRECTORIES)
    foreach(_asio_dir IN LISTS _asio_existing_dirs)
      if(EXISTS "${_asio_dir}/asio/version.hpp")
        set(asio_INCLUDE_DIR "${_asio_dir}")
        break()
      endif()
    endforeach()
    unset(_asio_existing_dirs)
    unset(_asio_dir)
  endif()
  if(NOT asio_INCLUDE_DIR)
    # Its headers cannot be located (e.g. a generator expression): trust the existing target.
    set(asio_FOUND TRUE)
    return()
  endif()
else()
  find_path(asio_INCLUDE_DIR
    NAMES asio.hpp
    HINTS ${ASIO_ROOT} ENV ASIO_ROOT
    PATH_SUFFIXES include
    DOC "Directory containing standalone Asio's asio.hpp")
  mark_as_advanced(asio_INCLUDE_DIR)
endif()

# ASIO_VERSION is encoded as XXYYZZ: major * 100000 + minor * 100 + patch (102201 = 1.22.1).
if(asio_INCLUDE_DIR AND EXISTS "${asio_INCLUDE_DIR}/asio/version.hpp")
  file(STRINGS "${asio_INCLUDE_DIR}/asio/version.hpp" _asio_version_line
       REGEX "^#[ \t]*define[ \t]+ASIO_VERSION[ \t]+[0-9]+")
  if(_asio_version_line MATCHES "ASIO_VERSION[ \t]+([0-9]+)")
    math(EXPR _asio_major "${CMAKE_MATCH_1} / 100000")
    math(EXPR _asio_minor "${CMAKE_MATCH_1} / 100 % 1000")
    math(EXPR _asio_patch "${CMAKE_MATCH_1} % 100")
    set(asio_VERSION "${_asio_major}.${_asio_minor}.${_asio_patch}")
  endif()
  unset(_asio_version_line)
  unset(_asio_major)
  unset(_asio_minor)
  unset(_asio_patch)
endif()

if(asio_FIND_VERSION)
  set(_asio_wanted "standalone Asio ${asio_FIND_VERSION} or newer")
else()
  set(_asio_wanted "standalone Asio")
endif()
set(_asio_find_failure_message
  "${_asio_wanted} was not found (no asio.hpp).\n"
  "On Debian or Ubuntu, install it with: apt-get install libasio-dev\n"
  "or pass -Dasio_INCLUDE_DIR=<directory that contains asio.hpp>.")
string(JOIN "" _asio_find_failure_message ${_asio_find_failure_message})
unset(_asio_wanted)

if(NOT asio_INCLUDE_DIR AND NOT TARGET asio::asio)
  set(_asio_reason_args REASON_FAILURE_MESSAGE "${_asio_find_failure_message}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(asio
  REQUIRED_VARS asio_INCLUDE_DIR
  VERSION_VAR asio_VERSION
  ${_asio_reason_args})
unset(_asio_reason_args)
unset(_asio_find_failure_message)

if(asio_FOUND AND NOT TARGET asio::asio)
  # Asio starts threads internally (e.g. resolver) and needs -pthread.
  if(NOT TARGET Threads::Threads)
    set(THREADS_PREFER_PTHREAD_FLAG ON)
    find_package(Threads QUIET)
  endif()
  if(NOT TARGET Threads::Threads)
    set(asio_FOUND FALSE)
    if(asio_FIND_REQUIRED)
      message(FATAL_ERROR "Asio needs a threads library, and find_package(Threads) found none.")
    endif()
    return()
  endif()

  add_library(asio::asio INTERFACE IMPORTED)
  set_target_properties(asio::asio PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${asio_INCLUDE_DIR}"
    INTERFACE_COMPILE_DEFINITIONS "ASIO_STANDALONE"
    INTERFACE_LINK_LIBRARIES "Threads::Threads")
endif()
