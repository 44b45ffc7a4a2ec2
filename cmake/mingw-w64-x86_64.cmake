# Cross-compile for 64-bit Windows with mingw-w64 (Debian: gcc-mingw-w64-x86-64),
# running the tests through Wine:
#   cmake -S . -B build-win -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(SHMCHAN_MINGW_PREFIX x86_64-w64-mingw32 CACHE STRING "mingw-w64 target triple")
set(CMAKE_C_COMPILER ${SHMCHAN_MINGW_PREFIX}-gcc)
set(CMAKE_RC_COMPILER ${SHMCHAN_MINGW_PREFIX}-windres)

set(CMAKE_FIND_ROOT_PATH /usr/${SHMCHAN_MINGW_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# pkg-config must not hand the host's (Linux) packages to the cross compiler.
set(ENV{PKG_CONFIG_LIBDIR} "${CMAKE_FIND_ROOT_PATH}/lib/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# Self-contained binaries: no libgcc or winpthread DLLs to find at run time.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static")

# ctest runs the .exe files through Wine (64-bit).
find_program(SHMCHAN_WINE NAMES wine wine64)
if(SHMCHAN_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${SHMCHAN_WINE})
endif()
