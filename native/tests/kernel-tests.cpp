#include "kernels/kernels.h"
#include <stdio.h>
int main() { printf("%s\n", aglm_kernels_avx512.name); return 0; }
