#include "cuda-emu.h"
