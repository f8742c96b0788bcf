# Writes a binary file (IN) as a C++ header (OUT) holding `alignas(16) static const unsigned char <NAME>[]` and
# <NAME>_bytes, so the CUDA module carries its fatbin and needs no file at run time (cuModuleLoadData takes memory).
# Usage: cmake -DIN=kernels.fatbin -DOUT=kernels.h -DNAME=symbol -P embed-bytes.cmake
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" len)
if(len EQUAL 0)
  message(FATAL_ERROR "embed-bytes: ${IN} is empty")
endif()
# One regex pass (a byte-by-byte loop is quadratic in CMake), then a line break every 16 bytes.
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],)" "\\1\n" body "${body}")
file(WRITE "${OUT}" "// Generated from ${IN} by native/backends/cuda/embed-bytes.cmake; do not edit.\n#pragma once\n#include <cstddef>\nalignas(16) static const unsigned char ${NAME}[] = {\n${body}};\nstatic const size_t ${NAME}_bytes = sizeof(${NAME});\n")
