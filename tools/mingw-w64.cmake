# CMake toolchain file: cross-compile dcb for Windows x64 with Debian's
# mingw-w64 and run the results (tests, try_run) under Wine.
#
#   tools/bootstrap            # once: builds the static Windows libraries
#   cmake -S . -B build/win64 -DCMAKE_TOOLCHAIN_FILE=tools/mingw-w64.cmake
#   cmake --build build/win64 && ctest --test-dir build/win64
#
# Dependencies are found with pkg-config, exactly as in the native build, but
# only among the static libraries that tools/bootstrap cross-compiled from
# Debian source packages into .cache/mingw64 (or $DCB_MINGW_PREFIX).

set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(DCB_MINGW_TRIPLE x86_64-w64-mingw32)
# The unsuffixed driver is Debian's default thread model (win32); libuv and
# our code use Win32 threads directly, so neither needs winpthreads.
set(CMAKE_C_COMPILER ${DCB_MINGW_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${DCB_MINGW_TRIPLE}-g++)
set(CMAKE_RC_COMPILER ${DCB_MINGW_TRIPLE}-windres)

# Where the cross-built libraries live. Resolved once and kept in the cache:
# CMake re-runs itself from `cmake --build`, whose environment may lack the
# variable that the first configure had.
get_filename_component(_dcb_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
if(NOT DCB_MINGW_PREFIX)
  if(NOT "$ENV{DCB_MINGW_PREFIX}" STREQUAL "")
    set(DCB_MINGW_PREFIX "$ENV{DCB_MINGW_PREFIX}")
  else()
    set(DCB_MINGW_PREFIX "${_dcb_root}/.cache/mingw64")
  endif()
  set(DCB_MINGW_PREFIX "${DCB_MINGW_PREFIX}" CACHE PATH
      "Prefix of the static mingw-w64 libraries built by tools/bootstrap")
endif()
# try_compile projects re-read this file without our cache.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES DCB_MINGW_PREFIX)
get_property(_dcb_in_try_compile GLOBAL PROPERTY IN_TRY_COMPILE)
get_property(_dcb_warned GLOBAL PROPERTY DCB_MINGW_PREFIX_WARNED)
if(NOT _dcb_in_try_compile AND NOT _dcb_warned
   AND NOT EXISTS "${DCB_MINGW_PREFIX}/lib/pkgconfig")
  set_property(GLOBAL PROPERTY DCB_MINGW_PREFIX_WARNED TRUE)
  message(WARNING "${DCB_MINGW_PREFIX}/lib/pkgconfig does not exist: "
                  "run tools/bootstrap to build the Windows libraries")
endif()

# Headers and libraries come from the mingw-w64 sysroot and our prefix only,
# never from the build machine; programs (protoc-c, python3) from the host.
set(CMAKE_FIND_ROOT_PATH /usr/${DCB_MINGW_TRIPLE} "${DCB_MINGW_PREFIX}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config must see our .pc files and nothing else: PKG_CONFIG_LIBDIR
# replaces the built-in /usr/lib/... search path, PKG_CONFIG_PATH (searched
# before it) is cleared, and so is the sysroot, because our .pc files carry
# absolute paths. The toolchain file runs inside the configuring cmake
# process, so these settings are what find_package(PkgConfig) and
# pkg_check_modules() see later on.
set(ENV{PKG_CONFIG_LIBDIR} "${DCB_MINGW_PREFIX}/lib/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")

# Tests and try_run go through Wine, headless, in a Wine prefix private to
# this build folder (so build folders and machines never share state).
if(NOT DEFINED CMAKE_CROSSCOMPILING_EMULATOR)
  set(CMAKE_CROSSCOMPILING_EMULATOR
      "${CMAKE_CURRENT_LIST_DIR}/wine-emu;--prefix;${CMAKE_BINARY_DIR}/wineprefix")
endif()
