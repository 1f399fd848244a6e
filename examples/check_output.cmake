# Runs an example and checks its output against an expected-output file:
#   cmake -DPROGRAM=<executable> -DEXPECTED=<file> -P check_output.cmake
#
# The rules (issue 2):
# - every expected line is printed exactly once, and nothing else (stderr stays empty; blank
#   lines only count: there must be as many as expected);
# - lines keep the expected order, except that lines of two different streams
#   ("[Stream N] ...") may interleave. So the writer's lines, each stream's lines and the
#   narration keep their order, and whatever the expected output shows sequenced between the
#   writer, a stream and the narration stays sequenced.
cmake_minimum_required(VERSION 3.21)

foreach(var IN ITEMS PROGRAM EXPECTED)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_output.cmake: -D${var}=... is required")
  endif()
endforeach()

execute_process(COMMAND "${PROGRAM}"
                OUTPUT_VARIABLE output
                ERROR_VARIABLE errors
                RESULT_VARIABLE result
                TIMEOUT 120)
file(READ "${EXPECTED}" expected)

# CMake lists split on ';' and treat '[' ']' specially: encode them before splitting into lines.
function(split_lines text out_var)
  string(REPLACE "\r" "" text "${text}")
  string(REPLACE ";" "<bc-semicolon>" text "${text}")
  string(REPLACE "[" "<bc-lbracket>" text "${text}")
  string(REPLACE "]" "<bc-rbracket>" text "${text}")
  string(REGEX REPLACE "\n$" "" text "${text}")
  string(REPLACE "\n" ";" text "${text}")
  set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

function(decode line out_var)
  string(REPLACE "<bc-semicolon>" ";" line "${line}")
  string(REPLACE "<bc-lbracket>" "[" line "${line}")
  string(REPLACE "<bc-rbracket>" "]" line "${line}")
  set(${out_var} "${line}" PARENT_SCOPE)
endfunction()

# "stream N" for a stream's lines, "other" for the writer's and the narration.
function(group_of line out_var)
  if(line MATCHES "^<bc-lbracket>Stream ([0-9]+)<bc-rbracket>")
    set(${out_var} "stream ${CMAKE_MATCH_1}" PARENT_SCOPE)
  else()
    set(${out_var} "other" PARENT_SCOPE)
  endif()
endfunction()

set(problems "")
function(problem message)
  set(problems "${problems}  - ${message}\n" PARENT_SCOPE)
endfunction()

if(NOT result EQUAL 0)
  problem("the program exited with '${result}', expected 0")
endif()
if(NOT errors STREQUAL "")
  problem("the program wrote to stderr:\n${errors}")
endif()

split_lines("${expected}" expected_lines)
split_lines("${output}" output_lines)

set(expected_blank 0)
foreach(line IN LISTS expected_lines)
  if(line STREQUAL "")
    math(EXPR expected_blank "${expected_blank} + 1")
  endif()
endforeach()

# Map each printed line to its index in the expected output.
set(output_blank 0)
set(indices "")
foreach(line IN LISTS output_lines)
  if(line STREQUAL "")
    math(EXPR output_blank "${output_blank} + 1")
    continue()
  endif()
  decode("${line}" shown)
  list(FIND expected_lines "${line}" index)
  if(index EQUAL -1)
    problem("unexpected line: '${shown}'")
  elseif(index IN_LIST indices)
    problem("printed more than once: '${shown}'")
  else()
    list(APPEND indices ${index})
  endif()
endforeach()

set(index 0)
foreach(line IN LISTS expected_lines)
  if(NOT line STREQUAL "" AND NOT index IN_LIST indices)
    decode("${line}" shown)
    problem("missing line: '${shown}'")
  endif()
  math(EXPR index "${index} + 1")
endforeach()

if(NOT output_blank EQUAL expected_blank)
  problem("${output_blank} blank lines, expected ${expected_blank}")
endif()

# Order: a pair printed in the opposite order of the expected output is fine only when the two
# lines belong to two different streams.
list(LENGTH indices count)
if(count GREATER 1)
  math(EXPR last "${count} - 1")
  foreach(i RANGE 0 ${last})
    list(GET indices ${i} a)
    list(GET expected_lines ${a} line_a)
    group_of("${line_a}" group_a)
    math(EXPR next "${i} + 1")
    if(next GREATER last)
      break()
    endif()
    foreach(j RANGE ${next} ${last})
      list(GET indices ${j} b)
      if(a LESS b)
        continue()
      endif()
      list(GET expected_lines ${b} line_b)
      group_of("${line_b}" group_b)
      if(group_a MATCHES "^stream" AND group_b MATCHES "^stream" AND NOT group_a STREQUAL group_b)
        continue()
      endif()
      decode("${line_a}" shown_a)
      decode("${line_b}" shown_b)
      problem("out of order: '${shown_a}' was printed before '${shown_b}'")
    endforeach()
  endforeach()
endif()

if(problems)
  message("---- output of ${PROGRAM} ----\n${output}---- end of output ----")
  message(FATAL_ERROR "the output does not match ${EXPECTED}:\n${problems}")
endif()
message(STATUS "the output matches ${EXPECTED}")
