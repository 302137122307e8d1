# run_deploy.cmake: runs test-deploy.exe under Wine (tools/wine-emu) in its
# own prefix with Wine's "eventlog" debug channel on, then checks what that
# channel shows: Wine has no Event Log to read back, but its ReportEventW
# prints every event (err: error, warn: warning, trace: information) on the
# Unix stderr of the process that reports it. The prefix's first process
# starts services.exe, so the service's events land in the same stream as
# the test's, the shim's (inside dcb-sim) and the refused broker's.
#
#   cmake -DWINE_EMU=tools/wine-emu -DPREFIX=<dir> -DEXE=test-deploy.exe
#         -DOUT=<dir for the logs> -P run_deploy.cmake
foreach(v WINE_EMU PREFIX EXE OUT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_deploy.cmake: -D${v}=... is required")
  endif()
endforeach()
file(MAKE_DIRECTORY ${OUT})
set(stdout_file ${OUT}/deploy.out)
set(stderr_file ${OUT}/deploy.err)

# Nothing may be left of an earlier session in this prefix: its services
# would keep another WINEDEBUG and another stderr.
execute_process(COMMAND ${CMAKE_COMMAND} -E env WINEPREFIX=${PREFIX} wineserver -k
                RESULT_VARIABLE ignored OUTPUT_QUIET ERROR_QUIET)
execute_process(COMMAND ${CMAKE_COMMAND} -E env WINEPREFIX=${PREFIX} wineserver -w
                RESULT_VARIABLE ignored OUTPUT_QUIET ERROR_QUIET TIMEOUT 30)

set(ENV{DCB_WINEDEBUG} "-all,err+eventlog,warn+eventlog,trace+eventlog")
# Files, not pipes: the prefix's services outlive the test by a few seconds.
execute_process(COMMAND ${WINE_EMU} --prefix ${PREFIX} ${EXE}
                RESULT_VARIABLE rc OUTPUT_FILE ${stdout_file} ERROR_FILE ${stderr_file}
                TIMEOUT 840)
# End the session now: services, drivers and the server of this prefix only.
execute_process(COMMAND ${CMAKE_COMMAND} -E env WINEPREFIX=${PREFIX} wineserver -k
                RESULT_VARIABLE ignored OUTPUT_QUIET ERROR_QUIET)

file(READ ${stdout_file} out)
file(READ ${stderr_file} err)
message("${out}")

# The ReportEventW lines, and which of them are expected.
string(REGEX MATCHALL "[^\n]*:eventlog:ReportEventW [^\n]*" events "${err}")
list(LENGTH events n_events)
message("deploy: wine: ${n_events} ReportEventW call(s) on Wine's eventlog channel:")
foreach(e IN LISTS events)
  string(REGEX REPLACE "^[0-9a-f]+:" "" e "${e}")
  message("    ${e}")
endforeach()

set(failed 0)
function(expect_event what regex)
  string(REGEX MATCH "${regex}" hit "${err}")
  if(hit)
    message("deploy: wine: event seen: ${what}")
  else()
    message("deploy: FAIL: no ReportEventW call for ${what} (/${regex}/)")
    set(failed 1 PARENT_SCOPE)
  endif()
endfunction()
# The service: its start and stop notes (information).
expect_event("the service's start (information)"
             "trace:eventlog:ReportEventW L\"dcb-broker\\[[0-9]+\\]: dcb-broker [^\"]* listening on [^\"]*dcb-broker [^\n]*config C:")
expect_event("the service's stop (information)"
             "trace:eventlog:ReportEventW L\"dcb-broker\\[[0-9]+\\]: service stop: shutting down\"")
expect_event("the service's last line (information)"
             "trace:eventlog:ReportEventW L\"dcb-broker\\[[0-9]+\\]: stopped\"")
# A start that failed on a configuration error: what the broker printed.
expect_event("the failed start, with the broker's message (error)"
             "err:eventlog:ReportEventW L\"dcb-broker\\[[0-9]+\\]: the dcb-broker service did not start \\(exit status 2, usage or configuration error\\)")
expect_event("the configuration error's text in the same event"
             "err:eventlog:ReportEventW L\"[^\"]*dcb\\.ini:2: \\[broker\\] log_level")
# The shim, inside dcb-sim: start and stop, and its refusal of a broker
# served by an account it does not expect (an error).
expect_event("the shim's start (information)"
             "trace:eventlog:ReportEventW L\"dcbshim\\[[0-9]+\\]: dcbshim [^\"]* started: broker")
expect_event("the shim's stop (information)"
             "trace:eventlog:ReportEventW L\"dcbshim\\[[0-9]+\\]: dcbshim stopped\"")
expect_event("the shim refusing the broker's account (error)"
             "err:eventlog:ReportEventW L\"dcbshim\\[[0-9]+\\]: refusing broker pipe")
# The second broker refused on the service's pipe (error).
expect_event("a second broker refused on the pipe (error)"
             "err:eventlog:ReportEventW L\"dcb-broker\\[[0-9]+\\]: cannot listen on")
# No debug or info line other than the notes: the log file has those.
string(REGEX MATCH "ReportEventW L\"dcb-broker\\[[0-9]+\\]: plugin [a-z]+: host pid" chatty "${err}")
if(chatty)
  message("deploy: FAIL: an info line that is not a start/stop note reached the Event Log")
  set(failed 1)
endif()

if(NOT rc EQUAL 0 OR failed)
  string(REGEX MATCHALL "[^\n]*(err|warn):[^\n]*" wine_err "${err}")
  message("deploy: stderr (Wine's errors and warnings):")
  foreach(l IN LISTS wine_err)
    message("    ${l}")
  endforeach()
  message(FATAL_ERROR "deploy.service failed (test exit ${rc}, Event Log checks ${failed}); "
                      "logs in ${OUT} and \"${PREFIX}/drive_c/ProgramData/dcb data\"")
endif()
