# Runs an example and checks its output against an expected-output file, actor by actor:
#   cmake -DPROGRAM=<executable> -DEXPECTED=<file> -P check_actor_lines.cmake
#
# For examples whose parties (a writer and its readers) run concurrently, so that their lines may
# interleave differently from run to run while what each party prints is always the same:
# - a line that starts with "[Name]" belongs to the actor Name; any other non-blank line is
#   narration, and narration lines split the output into sections;
# - the narration must be exactly the expected narration, in order;
# - within each section, every actor must print exactly its expected lines, in order; lines of
#   different actors may interleave;
# - blank lines are ignored; the program must exit with 0 and write nothing to stderr.
cmake_minimum_required(VERSION 3.21)

foreach(var IN ITEMS PROGRAM EXPECTED)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_actor_lines.cmake: -D${var}=... is required")
  endif()
endforeach()

execute_process(COMMAND "${PROGRAM}"
                OUTPUT_VARIABLE output
                ERROR_VARIABLE errors
                RESULT_VARIABLE result
                TIMEOUT 120)
file(READ "${EXPECTED}" expected)

# Rewrites `text` so that each section lists its actors one after the other (sorted by name),
# each with its own lines in their original order. Two outputs match when these forms are equal.
function(canonical text out_var)
  string(REPLACE "\r" "" text "${text}")
  # CMake lists split on ';' and treat '[' ']' specially: encode them before splitting into lines.
  string(REPLACE ";" "<semicolon>" text "${text}")
  string(REPLACE "[" "<lb>" text "${text}")
  string(REPLACE "]" "<rb>" text "${text}")
  string(REGEX REPLACE "\n$" "" text "${text}")
  string(REPLACE "\n" ";" lines "${text}")
  set(result "")
  set(actors "")
  foreach(line IN LISTS lines)
    if(line STREQUAL "")
      continue()
    endif()
    if(line MATCHES "^<lb>([^<]+)<rb>")
      set(actor "${CMAKE_MATCH_1}")
      string(MAKE_C_IDENTIFIER "${actor}" id)
      if(NOT id IN_LIST actors)
        list(APPEND actors "${id}")
        set(name_${id} "${actor}")
        set(lines_${id} "")
      endif()
      string(APPEND lines_${id} "    ${line}\n")
    else()
      # A narration line closes the section before it.
      list(SORT actors)
      foreach(id IN LISTS actors)
        string(APPEND result "  <lb>${name_${id}}<rb>:\n${lines_${id}}")
      endforeach()
      set(actors "")
      string(APPEND result "${line}\n")
    endif()
  endforeach()
  list(SORT actors)
  foreach(id IN LISTS actors)
    string(APPEND result "  <lb>${name_${id}}<rb>:\n${lines_${id}}")
  endforeach()
  string(REPLACE "<semicolon>" ";" result "${result}")
  string(REPLACE "<lb>" "[" result "${result}")
  string(REPLACE "<rb>" "]" result "${result}")
  set(${out_var} "${result}" PARENT_SCOPE)
endfunction()

set(problems "")
if(NOT result EQUAL 0)
  string(APPEND problems "  - the program exited with '${result}', expected 0\n")
endif()
if(NOT errors STREQUAL "")
  string(APPEND problems "  - the program wrote to stderr:\n${errors}\n")
endif()

canonical("${expected}" want)
canonical("${output}" got)
if(NOT got STREQUAL want)
  string(APPEND problems "  - the lines differ (shown per section and actor):\n"
                         "---- expected ----\n${want}---- got ----\n${got}---- end ----\n")
endif()

if(problems)
  message("---- output of ${PROGRAM} ----\n${output}---- end of output ----")
  message(FATAL_ERROR "the output does not match ${EXPECTED}:\n${problems}")
endif()
message(STATUS "every actor printed its expected lines (${EXPECTED})")
