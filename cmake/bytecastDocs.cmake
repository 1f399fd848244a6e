# The `docs` target: Doxygen over the public headers (cmake/Doxyfile.in), warnings as errors.
# Debian: apt-get install doxygen. The generated HTML stays in the build tree.
find_package(Doxygen QUIET)
if(DOXYGEN_FOUND)
  configure_file("${CMAKE_CURRENT_LIST_DIR}/Doxyfile.in" "${CMAKE_CURRENT_BINARY_DIR}/Doxyfile" @ONLY)
  add_custom_target(docs
    COMMAND Doxygen::doxygen "${CMAKE_CURRENT_BINARY_DIR}/Doxyfile"
    WORKING_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}"
    COMMENT "Doxygen: the reference of include/bytecast -> ${CMAKE_CURRENT_BINARY_DIR}/docs/html"
    VERBATIM)
else()
  message(STATUS "bytecast: doxygen not found, no `docs` target (Debian: apt-get install doxygen)")
endif()
