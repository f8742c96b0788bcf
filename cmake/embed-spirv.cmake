# Writes a SPIR-V binary (SPV) as a C++ header (OUT) holding `static const uint32_t <NAME>[]` and its size in bytes,
# so that the Vulkan backend module carries its shaders and needs no files at run time.
# Usage: cmake -DSPV=in.spv -DOUT=out.h -DNAME=symbol -P embed-spirv.cmake
file(READ "${SPV}" hex HEX)
string(LENGTH "${hex}" len)
math(EXPR words "${len} / 8")
set(body "")
set(i 0)
while(i LESS len)
  string(SUBSTRING "${hex}" ${i} 8 w)
  # little-endian bytes -> one uint32_t
  string(SUBSTRING "${w}" 0 2 b0)
  string(SUBSTRING "${w}" 2 2 b1)
  string(SUBSTRING "${w}" 4 2 b2)
  string(SUBSTRING "${w}" 6 2 b3)
  string(APPEND body "0x${b3}${b2}${b1}${b0}u,")
  math(EXPR i "${i} + 8")
  math(EXPR col "(${i} / 8) % 8")
  if(col EQUAL 0)
    string(APPEND body "\n")
  endif()
endwhile()
file(WRITE "${OUT}" "// Generated from ${SPV} by cmake/embed-spirv.cmake; do not edit.\n#pragma once\n#include <cstdint>\nstatic const uint32_t ${NAME}[] = {\n${body}};\nstatic const size_t ${NAME}_bytes = sizeof(${NAME});\n")
