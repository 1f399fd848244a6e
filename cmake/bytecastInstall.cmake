# Install rules and the CMake package: find_package(bytecast CONFIG) gives bytecast::bytecast,
# which brings asio::asio along through the Findasio.cmake installed beside the config.

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(BYTECAST_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/bytecast"
    CACHE STRING "Where bytecast's CMake package files are installed, relative to the prefix")
mark_as_advanced(BYTECAST_INSTALL_CMAKEDIR)

install(TARGETS bytecast EXPORT bytecastTargets)
install(DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}/include/"
        TYPE INCLUDE
        FILES_MATCHING PATTERN "*.hpp")
install(EXPORT bytecastTargets
        NAMESPACE bytecast::
        DESTINATION "${BYTECAST_INSTALL_CMAKEDIR}")

set(_bytecast_generated "${CMAKE_CURRENT_BINARY_DIR}/generated")
configure_package_config_file(
  "${CMAKE_CURRENT_SOURCE_DIR}/cmake/bytecastConfig.cmake.in"
  "${_bytecast_generated}/bytecastConfig.cmake"
  INSTALL_DESTINATION "${BYTECAST_INSTALL_CMAKEDIR}")
write_basic_package_version_file(
  "${_bytecast_generated}/bytecastConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMajorVersion
  ARCH_INDEPENDENT)
install(FILES
          "${_bytecast_generated}/bytecastConfig.cmake"
          "${_bytecast_generated}/bytecastConfigVersion.cmake"
          "${CMAKE_CURRENT_SOURCE_DIR}/cmake/Findasio.cmake"
        DESTINATION "${BYTECAST_INSTALL_CMAKEDIR}")
install(FILES "${CMAKE_CURRENT_SOURCE_DIR}/LICENSE"
        DESTINATION "${CMAKE_INSTALL_DATADIR}/doc/bytecast")
unset(_bytecast_generated)
