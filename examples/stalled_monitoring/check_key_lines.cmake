# Runs the stalled_monitoring example and checks its key lines, not its timings (which vary):
#   cmake -DPROGRAM=<executable> -P check_key_lines.cmake
# The program must exit with 0, write nothing to stderr, and print lines matching the patterns
# below in this order (other lines may come in between). Millisecond values are not checked.
cmake_minimum_required(VERSION 3.21)

if(NOT DEFINED PROGRAM)
  message(FATAL_ERROR "check_key_lines.cmake: -DPROGRAM=... is required")
endif()

execute_process(COMMAND "${PROGRAM}"
                OUTPUT_VARIABLE output
                ERROR_VARIABLE errors
                RESULT_VARIABLE result
                TIMEOUT 120)

# One pattern per key line, in the order they must appear. Each matches within one line.
set(ms "\\+[0-9]+ ms")
set(patterns
  "=== Stalled Monitoring Example ==="
  "--- Part 1: a timeout fires after the data stops ---"
  "\\[Reader\\] ${ms}: 'reading 1'"
  "\\[Reader\\] ${ms}: 'reading 2'"
  "\\[Reader\\] ${ms}: 'reading 3'"
  "\\[Reader\\] ${ms}: timed out, no data for 200 ms, giving up"
  "--- Part 2: a throttle spaces out a burst of chunks ---"
  "\\[Reader\\] chunk 1 at ${ms}"
  "\\[Reader\\] chunk 2 at ${ms}"
  "\\[Reader\\] chunk 3 at ${ms}"
  "\\[Reader\\] chunk 4 at ${ms}"
  "\\[Reader\\] chunk 5 at ${ms}"
  "\\[Reader\\] end of stream at ${ms}"
  "--- Part 3: throttle \\(100 ms\\) and timeout \\(300 ms\\) together ---"
  "\\[Reader\\] ${ms}: 'burst 1'"
  "\\[Reader\\] ${ms}: 'burst 2'"
  "\\[Reader\\] ${ms}: 'burst 3'"
  "\\[Reader\\] ${ms}: timed out, no data for 300 ms, still waiting"
  "\\[Reader\\] ${ms}: 'late chunk'"
  "\\[Reader\\] ${ms}: end of stream"
  "=== Example Complete ===")

set(problems "")
if(NOT result EQUAL 0)
  string(APPEND problems "  - the program exited with '${result}', expected 0\n")
endif()
if(NOT errors STREQUAL "")
  string(APPEND problems "  - the program wrote to stderr:\n${errors}\n")
endif()

# Search each pattern in what follows the previous match, one line at a time.
string(REPLACE "\r" "" rest "${output}")
foreach(pattern IN LISTS patterns)
  string(REGEX MATCH "(^|\n)${pattern}(\n|$)" found "${rest}")
  if(found STREQUAL "")
    string(APPEND problems "  - no line matching '${pattern}' (in this order)\n")
    continue()
  endif()
  string(FIND "${rest}" "${found}" at)
  string(LENGTH "${found}" length)
  math(EXPR next "${at} + ${length} - 1")  # keep the final newline: it starts the next line
  string(SUBSTRING "${rest}" ${next} -1 rest)
endforeach()

# These must appear once in each of the parts that have them, never more.
string(REGEX MATCHALL "timed out" timeouts "${output}")
list(LENGTH timeouts timeout_count)
if(NOT timeout_count EQUAL 2)
  string(APPEND problems "  - 'timed out' printed ${timeout_count} times, expected 2 (parts 1 and 3)\n")
endif()

if(problems)
  message("---- output of ${PROGRAM} ----\n${output}---- end of output ----")
  message(FATAL_ERROR "the output misses key lines:\n${problems}")
endif()
message(STATUS "the output has every key line")
