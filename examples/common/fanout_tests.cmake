# The network tests of the two fan-out servers, registered by one function that both
# examples/tcp_fanout and examples/http_fanout call. Each test runs one case of fanout_tests.py
# (next to this file): the server on 127.0.0.1 (ephemeral port), real clients (nc, curl, Python
# sockets). `ctest -L network` runs them.

find_package(Python3 COMPONENTS Interpreter)

# bytecast_add_fanout_tests(<server target> <protocol: tcp|http> "<case>|<title>" ...)
# registers "example <target>: <title>" for each case, which runs
# `fanout_tests.py --protocol <protocol> --server <the target's executable> --case <case>`.
function(bytecast_add_fanout_tests target protocol)
  # The emfile case runs the server out of file descriptors, and then UBSan's vptr check
  # (BYTECAST_SANITIZE with "undefined") fails on its own: compiler-rt 14 tests whether an
  # object's memory is readable with pipe(), which fails without descriptors, and reports a
  # valid Asio cancellation handler as "invalid vptr". So the server goes without that one
  # check; every other ASan and UBSan check stays. (A source property, so that the flag comes
  # after the sanitizer flags of bytecast_dev_options on the command line.)
  if(BYTECAST_SANITIZE MATCHES "undefined")
    get_target_property(sources ${target} SOURCES)
    set_property(SOURCE ${sources} APPEND PROPERTY COMPILE_OPTIONS -fno-sanitize=vptr)
  endif()

  set(python "python3") # not found: the tests fail with CTest's "could not find executable"
  if(Python3_Interpreter_FOUND)
    set(python "${Python3_EXECUTABLE}")
  endif()
  foreach(case_and_title IN LISTS ARGN)
    string(REPLACE "|" ";" case_and_title "${case_and_title}")
    list(GET case_and_title 0 case)
    list(GET case_and_title 1 title)
    set(name "example ${target}: ${title}")
    add_test(NAME "${name}"
             COMMAND "${python}" "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/fanout_tests.py"
                     --protocol ${protocol} --server "$<TARGET_FILE:${target}>" --case ${case})
    set_tests_properties("${name}" PROPERTIES LABELS network TIMEOUT 60)
    if(case STREQUAL "stalled_client")
      set_tests_properties("${name}" PROPERTIES RUN_SERIAL TRUE) # it measures throughput
    endif()
  endforeach()
endfunction()
