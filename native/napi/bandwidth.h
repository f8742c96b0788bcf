// measureReadBandwidth(bytes?, threads?) -> Promise<number>: the DRAM read bandwidth in GB/s (10^9 bytes per second),
// for the benchmarks' roofline. Compiled without ISA flags.
#pragma once

#include <napi.h>

void aglm_bandwidth_init(Napi::Env env, Napi::Object exports);
