cmake_minimum_required(VERSION 3.20)
# Runs EXE (through EMU, '|'-separated, when set) with ARGS and checks its
# exit code is EXPECT and that its output matches REGEX.
#   cmake -DEXE=... -DEMU=... -DEXPECT=2 -DREGEX=... -DARGS='a|b' -P check_exit.cmake
string(REPLACE "|" ";" emu "${EMU}")
string(REPLACE "|" ";" args "${ARGS}")
execute_process(COMMAND ${emu} ${EXE} ${args}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 100)
get_filename_component(prog "${EXE}" NAME_WE)
string(REPLACE ";" " " shown "${args}")
message("$ ${prog} ${shown}\n${out}${err}-> exit ${rc}")
if(NOT "${rc}" STREQUAL "${EXPECT}")
  message(FATAL_ERROR "${prog} exited with ${rc}, expected ${EXPECT}")
endif()
if(NOT "${out}${err}" MATCHES "${REGEX}")
  message(FATAL_ERROR "output does not match '${REGEX}'")
endif()
