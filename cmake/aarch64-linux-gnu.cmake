# Cross toolchain for Linux AArch64 (Debian/Ubuntu: g++-aarch64-linux-gnu, libc6-arm64-cross,
# libstdc++6-arm64-cross). Used by scripts/test-arm64.sh:
#   cmake -S native/tests -B build/arm64-kernel-tests -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
# Programs it builds run under qemu-user: qemu-aarch64 -L /usr/aarch64-linux-gnu ./program
# Another compiler prefix can be given with -DAGLM_AARCH64_PREFIX=... (default aarch64-linux-gnu-).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

if(NOT DEFINED AGLM_AARCH64_PREFIX)
  set(AGLM_AARCH64_PREFIX aarch64-linux-gnu-)
endif()
set(CMAKE_C_COMPILER ${AGLM_AARCH64_PREFIX}gcc)
set(CMAKE_CXX_COMPILER ${AGLM_AARCH64_PREFIX}g++)

# Headers and libraries of the target come from the cross sysroot only; programs (cmake, node) from the host.
set(AGLM_AARCH64_SYSROOT /usr/aarch64-linux-gnu CACHE PATH "AArch64 target root (qemu-aarch64 -L)")
set(CMAKE_FIND_ROOT_PATH ${AGLM_AARCH64_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(AGLM_QEMU_AARCH64 qemu-aarch64)
if(AGLM_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${AGLM_QEMU_AARCH64} -L ${AGLM_AARCH64_SYSROOT})
endif()
