# Runs an example program and checks its output; every example's CTest test uses this script:
#   cmake -DPROGRAM=<executable> -DEXPECTED=<file> [-DMODE=lines|actors|key_lines]
#         [-DCOUNT_REGEX=<regex> -DCOUNT=<n>] -P check_output.cmake
#
# In every mode the program must exit with 0 (within 120 s) and write nothing to stderr. Then:
#
# MODE=lines (the default), for a program whose output is the same on every run (issue 2):
# - every expected line is printed exactly once, and nothing else (blank lines only count: there
#   must be as many as expected);
# - lines keep the expected order, except that lines of two different streams ("[Stream N] ...")
#   may interleave. So the writer's lines, each stream's lines and the narration keep their
#   order, and whatever the expected output shows sequenced between the writer, a stream and the
#   narration stays sequenced.
#
# MODE=actors, for a program whose parties (a writer and its readers) run concurrently, so that
# their lines may interleave differently from run to run while what each party prints does not:
# - a line that starts with "[Name]" belongs to the actor Name; any other non-blank line is
#   narration, and narration lines split the output into sections;
# - the narration must be exactly the expected narration, in order;
# - within each section, every actor must print exactly its expected lines, in order; lines of
#   different actors may interleave;
# - blank lines are ignored.
#
# MODE=key_lines, for a program whose lines carry values that vary (timings): EXPECTED holds one
# regular expression per line (blank lines and lines starting with '#' are ignored); each must
# match a whole line of the output, in this order; other lines may come in between.
#
# COUNT_REGEX and COUNT (any mode): the regular expression matches exactly COUNT times in the
# whole output.
cmake_minimum_required(VERSION 3.21)

foreach(var IN ITEMS PROGRAM EXPECTED)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_output.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT DEFINED MODE)
  set(MODE lines)
endif()
if(NOT MODE MATCHES "^(lines|actors|key_lines)$")
  message(FATAL_ERROR "check_output.cmake: MODE must be lines, actors or key_lines, not '${MODE}'")
endif()
if(DEFINED COUNT_REGEX AND NOT DEFINED COUNT)
  message(FATAL_ERROR "check_output.cmake: -DCOUNT_REGEX=... needs -DCOUNT=<n>")
endif()

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

set(problems "")
function(problem message)  # called from this file's top level only
  set(problems "${problems}  - ${message}\n" PARENT_SCOPE)
endfunction()

if(NOT result EQUAL 0)
  problem("the program exited with '${result}', expected 0")
endif()
if(NOT errors STREQUAL "")
  problem("the program wrote to stderr:\n${errors}")
endif()

# --- MODE=lines ----------------------------------------------------------------------------------
# "stream N" for a stream's lines, "other" for the writer's and the narration.
function(group_of line out_var)
  if(line MATCHES "^<bc-lbracket>Stream ([0-9]+)<bc-rbracket>")
    set(${out_var} "stream ${CMAKE_MATCH_1}" PARENT_SCOPE)
  else()
    set(${out_var} "other" PARENT_SCOPE)
  endif()
endfunction()

if(MODE STREQUAL "lines")
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
  set(headline "the output does not match ${EXPECTED}")
  set(success "the output matches ${EXPECTED}")
endif()

# --- MODE=actors ---------------------------------------------------------------------------------
# Rewrites `text` so that each section lists its actors one after the other (sorted by name),
# each with its own lines in their original order. Two outputs match when these forms are equal.
function(canonical text out_var)
  split_lines("${text}" lines)
  set(result "")
  set(actors "")
  foreach(line IN LISTS lines)
    if(line STREQUAL "")
      continue()
    endif()
    if(line MATCHES "^<bc-lbracket>([^<]+)<bc-rbracket>")
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
        string(APPEND result "  <bc-lbracket>${name_${id}}<bc-rbracket>:\n${lines_${id}}")
      endforeach()
      set(actors "")
      string(APPEND result "${line}\n")
    endif()
  endforeach()
  list(SORT actors)
  foreach(id IN LISTS actors)
    string(APPEND result "  <bc-lbracket>${name_${id}}<bc-rbracket>:\n${lines_${id}}")
  endforeach()
  decode("${result}" result)
  set(${out_var} "${result}" PARENT_SCOPE)
endfunction()

if(MODE STREQUAL "actors")
  canonical("${expected}" want)
  canonical("${output}" got)
  if(NOT got STREQUAL want)
    problem("the lines differ (shown per section and actor):\n---- expected ----\n${want}---- got ----\n${got}---- end ----")
  endif()
  set(headline "the output does not match ${EXPECTED}")
  set(success "every actor printed its expected lines (${EXPECTED})")
endif()

# --- MODE=key_lines ------------------------------------------------------------------------------
if(MODE STREQUAL "key_lines")
  split_lines("${expected}" pattern_lines)
  # Search each pattern in what follows the previous match, one line at a time.
  string(REPLACE "\r" "" rest "${output}")
  foreach(pattern IN LISTS pattern_lines)
    if(pattern STREQUAL "" OR pattern MATCHES "^#")
      continue()
    endif()
    decode("${pattern}" pattern)
    string(REGEX MATCH "(^|\n)${pattern}(\n|$)" found "${rest}")
    if(found STREQUAL "")
      problem("no line matching '${pattern}' (in this order)")
      continue()
    endif()
    string(FIND "${rest}" "${found}" at)
    string(LENGTH "${found}" length)
    math(EXPR next "${at} + ${length} - 1")  # keep the final newline: it starts the next line
    string(SUBSTRING "${rest}" ${next} -1 rest)
  endforeach()
  set(headline "the output misses key lines")
  set(success "the output has every key line (${EXPECTED})")
endif()

# --- COUNT_REGEX / COUNT -------------------------------------------------------------------------
if(DEFINED COUNT_REGEX)
  string(REGEX MATCHALL "${COUNT_REGEX}" matches "${output}")
  list(LENGTH matches match_count)
  if(NOT match_count EQUAL COUNT)
    problem("'${COUNT_REGEX}' printed ${match_count} times, expected ${COUNT}")
  endif()
endif()

if(problems)
  message("---- output of ${PROGRAM} ----\n${output}---- end of output ----")
  message(FATAL_ERROR "${headline}:\n${problems}")
endif()
message(STATUS "${success}")
