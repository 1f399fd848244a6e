# Runs PROGRAM with ARGS (comma-separated); passes when it exits 0 and its output contains EXPECT.
# (A test's PASS_REGULAR_EXPRESSION alone would ignore the exit code.)
string(REPLACE "," ";" ARGS "${ARGS}")
execute_process(COMMAND "${PROGRAM}" ${ARGS}
                RESULT_VARIABLE rc
                OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
message("${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} exited with ${rc}\n${err}")
endif()
string(FIND "${out}" "${EXPECT}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${PROGRAM}: the output lacks ${EXPECT}\n${err}")
endif()
