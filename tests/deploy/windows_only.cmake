# deploy.windows_only: on a system other than Windows the deployment test
# does not apply. That is checked, not assumed: the test passes only if the
# Windows-only parts refuse to run here, each with its clear message.
#
#   cmake -DBROKER=dcb-broker -DDCBCTL=dcbctl -P windows_only.cmake
function(expect_refusal what want_rc want_text)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                  TIMEOUT 30)
  if(NOT rc STREQUAL "${want_rc}" OR NOT "${out}${err}" MATCHES "${want_text}")
    message(FATAL_ERROR "${what}: expected exit ${want_rc} and \"${want_text}\", got exit ${rc}:\n"
                        "${out}${err}")
  endif()
  message(STATUS "${what}: refused (exit ${rc})")
endfunction()

expect_refusal("dcb-broker --service" 2 "--service is for the Windows service control manager"
               ${BROKER} --service)
expect_refusal("dcb-broker --event-log" 2 "this system has no Windows Event Log"
               ${BROKER} --event-log --check-config)
expect_refusal("dcbctl install" 1 "Windows-only" ${DCBCTL} install)
expect_refusal("dcbctl uninstall" 1 "Windows-only" ${DCBCTL} uninstall)
message("Windows-only: not applicable here (dcb-broker refuses --service and --event-log, "
        "dcbctl refuses install and uninstall, as they must on this system)")
