#!/usr/bin/env bash
# The prepared GPU check (issue 10): on a fresh copy of the repository on a machine with an NVIDIA GPU, builds what
# it needs, then for the CUDA and the Vulkan backend runs the op-by-op comparison with the CPU (backend-ops), the
# stories260K golden tests (greedy tokens and logits against the reference) and a short benchmark (pp512 and tg64 on
# random-weight TinyLlama-shape and 8B-shape files in Q4_0, Q8_0 and F16), with decode's fraction of the GPU's
# memory-bandwidth roofline and pp512's fraction of its dense FP16 tensor-core peak; writes one JSON file and prints a
# summary. Each step has its own timeout, and a step that fails or times out is recorded and the next one runs; the
# whole run keeps to GPU_CHECK_BUDGET_S (470 s: under 8 minutes with the summary).
#
#   bash scripts/gpu-check.sh [out.json]            (default: .bench/gpu-check/gpu-check.json)
#   bash scripts/gpu-check.sh --pack [DIR]          gathers here, into DIR (.scratch/gpu-vendor), what a bare GPU machine
#                                                   without network may lack: node_modules (as a tarball), glslc and its
#                                                   library, the Vulkan headers and loader; run there with
#                                                   GPU_CHECK_VENDOR=DIR
#
# Without an NVIDIA GPU (nvidia-smi finds none) it runs degraded: the CUDA steps are skipped with the reason, the
# Vulkan steps run on whatever Vulkan device exists (lavapipe) with a small shape and short runs. Environment:
#   GPU_CHECK_BUDGET_S       the time budget in seconds (470)
#   GPU_CHECK_WORK           where models, logs and step results go (.bench/gpu-check)
#   GPU_CHECK_SKIP_BUILD=1   use build/Release as it is
#   GPU_CHECK_BUILD_LOCK     a file to flock around the build (a machine where builds share build/)
#   GPU_CHECK_VENDOR         a folder with what a bare machine may lack (bin/glslc, include/vulkan, lib/libvulkan.so.1,
#                            lib/ for glslc's libraries): put first on PATH / CMAKE_INCLUDE_PATH / the loader path
#   GPU_CHECK_FILES, GPU_CHECK_PP, GPU_CHECK_TG   the files to bench (SHAPE-TYPE: tiny|tinyllama|8b - q4_0|q8_0|f16)
#                            and the pp / tg token counts, instead of the defaults
#   GPU_CHECK_PEAK_BW_GBS, GPU_CHECK_PEAK_TFLOPS   the GPU's peak bandwidth / dense FP16 tensor TFLOPS, where the
#                            built-in table (by nvidia-smi's name) does not know the GPU
set -uo pipefail
# Paths on the command line are the caller's; GPU_CHECK_* paths are taken from the repository root.
ARG_OUT= ARG_DIR=
if [ "${1:-}" = --pack ]; then [ -n "${2:-}" ] && ARG_DIR=$(realpath -m "$2")
elif [ -n "${1:-}" ]; then ARG_OUT=$(realpath -m "$1"); fi
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ "${1:-}" = --pack ]; then
  DIR=${ARG_DIR:-$ROOT/.scratch/gpu-vendor}
  rm -rf "$DIR" && mkdir -p "$DIR/bin" "$DIR/lib" "$DIR/include" || exit 1
  tar czf "$DIR/node_modules.tar.gz" --exclude=node_modules/openai --exclude=node_modules/.cache node_modules || exit 1
  if command -v glslc >/dev/null; then
    cp "$(command -v glslc)" "$DIR/bin/"
    ldd "$(command -v glslc)" | awk '/libshaderc|libglslang|libSPIRV/ {print $3}' | xargs -r cp -L -t "$DIR/lib/"
  fi
  loader=$(ldconfig -p | grep -m1 'libvulkan.so.1 ' | sed 's/.*=> //' || true)
  [ -n "$loader" ] && cp -L "$loader" "$DIR/lib/libvulkan.so.1"
  for h in vulkan vk_video; do [ -d /usr/include/$h ] && cp -r /usr/include/$h "$DIR/include/"; done
  # The newer glslc and spirv-val of scripts/vulkan-next.sh with the libraries they load (their own C library and its
  # loader), for the Vulkan module's KHR cooperative-matrix tiles: next/bin/{glslc,spirv-val}.
  NEXT=$ROOT/.cache/vulkan-next/root
  NLIB=$(ls -d "$NEXT"/usr/lib/*-linux-gnu 2>/dev/null | head -1)
  NLDSO=$(ls "$NLIB"/ld-linux-*.so.* 2>/dev/null | head -1)
  if [ -n "$NLDSO" ] && [ -x "$NEXT/usr/bin/glslc" ] && [ -x "$NEXT/usr/bin/spirv-val" ]; then
    mkdir -p "$DIR/next/bin" "$DIR/next/lib"
    for tool in glslc spirv-val; do
      cp "$NEXT/usr/bin/$tool" "$DIR/next/bin/$tool.real"
      "$NLDSO" --library-path "$NLIB" --list "$NEXT/usr/bin/$tool" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | xargs -r cp -L -t "$DIR/next/lib/"
      printf '#!/bin/sh\nd=$(cd "$(dirname "$0")/.." && pwd)\nexec "$d/lib/%s" --library-path "$d/lib" "$d/bin/%s.real" "$@"\n' "$(basename "$NLDSO")" "$tool" >"$DIR/next/bin/$tool"
      chmod +x "$DIR/next/bin/$tool"
    done
    cp -L "$NLDSO" "$DIR/next/lib/"
    "$DIR/next/bin/glslc" --version | sed -n 1p && "$DIR/next/bin/spirv-val" --version | sed -n 1p
  else
    echo "no .cache/vulkan-next (bash scripts/vulkan-next.sh): the device builds the Vulkan module without KHR cooperative-matrix tiles"
  fi
  du -sh "$DIR" && ls "$DIR" "$DIR/bin" "$DIR/lib"
  exit 0
fi
BUDGET=${GPU_CHECK_BUDGET_S:-470}
WORK=$(realpath -m "${GPU_CHECK_WORK:-$ROOT/.bench/gpu-check}")
OUT=${ARG_OUT:-$WORK/gpu-check.json}
VENDOR=${GPU_CHECK_VENDOR:-}
T0=$(date +%s)
rm -rf "$WORK/steps" "$WORK/logs" "$WORK/models"
mkdir -p "$WORK/steps" "$WORK/logs" "$WORK/models"
: >"$WORK/notes.tsv"
SUFFIX=.so
REL=$ROOT/build/Release
TSX=(node --import tsx)

left() { echo $((BUDGET - ($(date +%s) - T0))); }
# note KEY VALUE: one fact about the machine or the run (tabs and newlines flattened).
note() { printf '%s\t%s\n' "$1" "$(printf '%s' "$2" | tr '\t\n' '  ')" >>"$WORK/notes.tsv"; }
# record NAME STATUS SECONDS DETAIL: a step's outcome (steps/NAME.step, read by the report).
record() { printf '%s\t%s\t%s\n' "$2" "$3" "$(printf '%s' "$4" | tr '\t\n' '  ')" >"$WORK/steps/$1.step"; }
skip() { record "$1" skipped 0 "$2"; echo "[gpu-check] skip $1: $2"; }
# step NAME TIMEOUT CMD...: runs CMD under a timeout (cut to the budget left), output in logs/NAME.log.
step() {
  local name=$1 limit=$2 rest
  shift 2
  rest=$(left)
  if ((rest < 15)); then
    skip "$name" "the time budget (${BUDGET} s) is spent"
    return 99
  fi
  ((limit > rest - 5)) && limit=$((rest - 5))
  echo "[gpu-check] $name (timeout ${limit} s, $rest s left)"
  local s rc status
  s=$(date +%s)
  timeout -k 10 "$limit" "$@" >"$WORK/logs/$name.log" 2>&1
  rc=$?
  if ((rc == 0)); then status=ok
  elif ((rc == 124 || rc == 137)); then status=timeout
  elif ((rc == 77)); then status="unavailable (exit 77)"
  else status="failed (exit $rc)"; fi
  record "$name" "$status" $(($(date +%s) - s)) "$(tail -c 1500 "$WORK/logs/$name.log")"
  return $rc
}

# ---- the machine -----------------------------------------------------------------------------------------------------
note node "$(node --version 2>&1)"
note cores "$(nproc)"
note diskFree "$(df -h "$WORK" | awk 'NR==2 {print $4}')"
note os "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
if [ -n "$VENDOR" ] && [ -d "$VENDOR" ]; then
  VENDOR=$(realpath "$VENDOR")
  export PATH="$VENDOR/bin:$PATH" CMAKE_INCLUDE_PATH="$VENDOR/include${CMAKE_INCLUDE_PATH:+:$CMAKE_INCLUDE_PATH}"
  export LD_LIBRARY_PATH="$VENDOR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  note vendor "$VENDOR"
  if [ -x "$VENDOR/next/bin/glslc" ]; then # the KHR cooperative-matrix tiles' compiler and validator (CMakeLists.txt)
    export AGLM_GLSLC_COOPMAT_KHR="$VENDOR/next/bin/glslc" AGLM_SPIRV_VAL_COOPMAT_KHR="$VENDOR/next/bin/spirv-val"
    note glslcKhr "$("$AGLM_GLSLC_COOPMAT_KHR" --version 2>&1 | head -1)"
  fi
fi
GPU=0
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  GPU=1
  note gpuQuery "$(nvidia-smi --query-gpu=name,memory.total,clocks.max.memory,clocks.max.sm,driver_version,compute_cap --format=csv,noheader,nounits 2>&1 | head -1)"
  note gpuList "$(nvidia-smi -L 2>&1)"
  note cudaVersion "$(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*')"
elif command -v nvidia-smi >/dev/null; then
  note noGpu "nvidia-smi -L: $(nvidia-smi -L 2>&1 | head -2)"
else
  note noGpu "nvidia-smi is not installed"
fi
if command -v nvcc >/dev/null; then note nvcc "$(nvcc --version 2>&1 | grep -m1 release || true)"; else note nvcc "not found: the CUDA module is not built"; fi
if command -v glslc >/dev/null; then note glslc "$(glslc --version 2>&1 | sed -n 1p || true)"; else note glslc "not found: the Vulkan module is not built (unless build/Release or prebuilds/ carries it)"; fi
for tool in cmake g++ make; do command -v $tool >/dev/null || note "no-$tool" "$tool is not on PATH: the build will fail; a carried build/Release is used as it is"; done
note libcuda "$(ldconfig -p 2>/dev/null | grep -m1 'libcuda.so.1 ' | sed 's/.*=> //' || true)"
# The Vulkan loader: OPEN_AUTOGLM_VULKAN_LOADER, the system's, or the vendor folder's.
if [ -z "${OPEN_AUTOGLM_VULKAN_LOADER:-}" ] && ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 '; then
  if [ -n "$VENDOR" ] && [ -e "$VENDOR/lib/libvulkan.so.1" ]; then export OPEN_AUTOGLM_VULKAN_LOADER="$VENDOR/lib/libvulkan.so.1"; fi
fi
note vulkanLoader "${OPEN_AUTOGLM_VULKAN_LOADER:-$(ldconfig -p 2>/dev/null | grep -m1 'libvulkan.so.1 ' | sed 's/.*=> //' || true)}"
# The NVIDIA Vulkan driver: its ICD file, or, where the container has the driver's library but no ICD file (driver
# capabilities without "graphics"), one written here for libGLX_nvidia.so.0.
if ((GPU)); then
  icd=$(ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json /usr/local/share/vulkan/icd.d/nvidia_icd*.json 2>/dev/null | head -1)
  if [ -z "$icd" ]; then
    glx=$(ldconfig -p 2>/dev/null | grep -m1 'libGLX_nvidia.so.0 ' | sed 's/.*=> //')
    [ -z "$glx" ] && glx=$(ls /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0 /usr/lib64/libGLX_nvidia.so.0 /usr/lib/libGLX_nvidia.so.0 2>/dev/null | head -1)
    if [ -n "$glx" ]; then
      icd=$WORK/nvidia_icd.json
      printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$glx" >"$icd"
    fi
  fi
  if [ -n "$icd" ]; then
    export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd" # the NVIDIA driver alone (not lavapipe beside it)
    note vulkanIcd "$icd"
  else
    note vulkanIcd "no NVIDIA Vulkan ICD (no nvidia_icd.json, no libGLX_nvidia.so.0): the container lacks the driver's graphics part"
  fi
else
  note vulkanIcd "$(ls /usr/share/vulkan/icd.d/ /etc/vulkan/icd.d/ 2>/dev/null | grep json | tr '\n' ' ')"
fi

# ---- build -----------------------------------------------------------------------------------------------------------
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
if [ ! -d node_modules ] && [ -n "$VENDOR" ] && [ -e "$VENDOR/node_modules.tar.gz" ]; then
  step node-modules 90 tar xzf "$VENDOR/node_modules.tar.gz"
fi
if [ ! -d node_modules ]; then step npm-ci 180 npm ci --no-audit --no-fund; fi
if [ "${GPU_CHECK_SKIP_BUILD:-}" = 1 ]; then
  skip build "GPU_CHECK_SKIP_BUILD=1"
elif [ -n "${GPU_CHECK_BUILD_LOCK:-}" ]; then
  step build 300 flock "$GPU_CHECK_BUILD_LOCK" npm run build
else
  step build 300 npm run build
fi
# A module this build could not make (no glslc or no nvcc here) but a carried prebuild has: used, and said so.
for name in vulkan cuda; do
  mod=$REL/aglm-backend-$name$SUFFIX
  pre=$ROOT/prebuilds/linux-$(node -p process.arch)/aglm-backend-$name$SUFFIX
  if [ ! -e "$mod" ] && [ -e "$pre" ] && [ -e "$REL/open_autoglm.node" ]; then
    cp "$pre" "$mod" && note "${name}Module" "copied from $pre (not built here)"
  elif [ -e "$mod" ]; then
    note "${name}Module" "$mod"
  else
    note "${name}Module" "not built"
  fi
done
# The CUDA backend runs only when asked for by name and with this set (its forward pass is new on GPUs).
export OPEN_AUTOGLM_CUDA_EXPERIMENTAL=1
step system-info 30 "${TSX[@]}" --input-type=module -e "import { nativeBinding } from './lib/native.ts';
  const s = nativeBinding().systemInfo(undefined);
  console.log(JSON.stringify(s.backends.map((b) => ({ name: b.name, state: b.state, score: b.score, reason: b.reason, path: b.path, devices: b.devices }))));"

# The backends to check, each with why not where it cannot be.
BACKENDS=()
if ((GPU)) && [ -e "$REL/aglm-backend-cuda$SUFFIX" ]; then BACKENDS+=(cuda)
elif ((GPU)); then skip cuda "the CUDA module is not built (nvcc missing at build time)"
else skip cuda "no NVIDIA GPU: $(grep '^noGpu' "$WORK/notes.tsv" | cut -f2)"; fi
if [ -e "$REL/aglm-backend-vulkan$SUFFIX" ]; then BACKENDS+=(vulkan)
else skip vulkan "the Vulkan module is not built (glslc or the Vulkan headers missing at build time)"; fi
# With a GPU, Vulkan is benchmarked only on a GPU device (a score above the CPU backend's): lavapipe would take the
# whole budget on these files. Its op-by-op and golden checks run wherever it runs.
VK_BENCH=1
if ((GPU)); then
  vk=$(tail -1 "$WORK/logs/system-info.log" 2>/dev/null | node -e "let s='';process.stdin.on('data',(d)=>(s+=d)).on('end',()=>{try{const v=JSON.parse(s).find((b)=>b.name==='vulkan');console.log(v?v.state+' '+v.score+' '+v.reason:'missing')}catch{console.log('unknown')}})")
  note vulkanBackend "$vk"
  read -r vk_state vk_score _ <<<"$vk"
  if [ "$vk_state" != ready ] || ! [ "${vk_score:-0}" -gt 100 ] 2>/dev/null; then VK_BENCH=0; fi
fi

# ---- the random-weight files, written in the background while the checks run --------------------------------------
if ((GPU)); then
  FILES=(tinyllama-q4_0 tinyllama-q8_0 tinyllama-f16 8b-q4_0 8b-q8_0 8b-f16)
  PP=512 TG=64
else
  FILES=(tiny-q4_0 tiny-q8_0 tiny-f16)
  PP=64 TG=8
fi
[ -n "${GPU_CHECK_FILES:-}" ] && read -r -a FILES <<<"$GPU_CHECK_FILES"
PP=${GPU_CHECK_PP:-$PP} TG=${GPU_CHECK_TG:-$TG}
note benchFiles "${FILES[*]}"
note benchTokens "pp$PP tg$TG"
((${#BACKENDS[@]})) || FILES=()
# Each file is written by its own background process under a timeout (cut to the budget); gen_wait records it.
declare -A GEN GEN_T0
gen_start() {
  local f=$1 limit=300 rest
  rest=$(left)
  ((limit > rest - 5)) && limit=$((rest - 5))
  GEN_T0[$f]=$(date +%s)
  echo "[gpu-check] model-$f (in the background, timeout ${limit} s)"
  timeout -k 10 "$limit" "${TSX[@]}" scripts/gpu-check.mts model "${f%-*}" "${f##*-}" "$WORK/models/$f.gguf" >"$WORK/logs/model-$f.log" 2>&1 &
  GEN[$f]=$!
}
# gen_wait FILE [cancel]: waits for the file's writer (or stops it) and records how it went.
gen_wait() {
  local f=$1 rc
  [ -z "${GEN[$f]:-}" ] && return
  [ "${2:-}" = cancel ] && kill "${GEN[$f]}" 2>/dev/null
  wait "${GEN[$f]}"
  rc=$?
  if [ "${2:-}" = cancel ]; then record "model-$f" skipped $(($(date +%s) - ${GEN_T0[$f]})) "stopped: the budget cannot bench it"
  elif ((rc == 0)); then record "model-$f" ok $(($(date +%s) - ${GEN_T0[$f]})) ""
  else record "model-$f" "$( ((rc == 124 || rc == 137)) && echo timeout || echo "failed (exit $rc)")" $(($(date +%s) - ${GEN_T0[$f]})) "$(tail -c 1500 "$WORK/logs/model-$f.log")"; fi
  ((rc == 0)) && [ "${2:-}" != cancel ] || rm -f "$WORK/models/$f.gguf"* # a partial file is no use
  unset "GEN[$f]"
}
for f in "${FILES[@]}"; do
  gen_start "$f"
  # One at a time on a small machine (each keeps a core busy and a tensor in memory).
  (($(nproc) < 8)) && gen_wait "$f"
done

# ---- op by op, then the golden tests --------------------------------------------------------------------------------
# A backend that hangs (a step ran out of time) is not given the later steps' time.
declare -A HUNG
timed_out() { [ "$(cut -f1 "$WORK/steps/$1.step" 2>/dev/null)" = timeout ]; }
for b in "${BACKENDS[@]}"; do
  step "ops-$b" 200 sh -c "'$REL/backend-ops' --module '$REL/aglm-backend-$b$SUFFIX' --json > '$WORK/steps/ops-$b.json'"
  timed_out "ops-$b" && HUNG[$b]="ops-$b timed out"
done
# Vulkan's prompt matmuls again on the fp16 tiles (where the device has cooperative matrices, those took them above).
if [[ " ${BACKENDS[*]} " == *" vulkan "* ]] && [ -z "${HUNG[vulkan]:-}" ]; then
  step ops-vulkan-fp16 60 sh -c "OPEN_AUTOGLM_VULKAN_PATHS=subgroup,integer-dot,fp16 '$REL/backend-ops' --module '$REL/aglm-backend-vulkan$SUFFIX' --op matmul --json > '$WORK/steps/ops-vulkan-fp16.json'"
fi
for b in "${BACKENDS[@]}"; do
  if [ -n "${HUNG[$b]:-}" ]; then skip "golden-$b" "${HUNG[$b]}"; continue; fi
  step "golden-$b" 120 "${TSX[@]}" scripts/gpu-check.mts golden "$b" "$WORK/steps/golden-$b.json"
  timed_out "golden-$b" && HUNG[$b]="golden-$b timed out"
done
((GPU)) || step dram-bandwidth 60 "${TSX[@]}" --input-type=module -e "import { nativeBinding } from './lib/native.ts';
  console.log(JSON.stringify({ readGBs: await nativeBinding().measureReadBandwidth(256 * 2 ** 20, undefined, 4) }));"

# ---- the benchmark: each file on each backend, while the budget lasts -----------------------------------------------
for f in "${FILES[@]}"; do
  # The 8B files need about a minute per backend; with less left, their writers are stopped.
  if [[ $f == 8b-* ]] && (($(left) < 60)); then
    gen_wait "$f" cancel
    for b in "${BACKENDS[@]}"; do skip "bench-$b-$f" "under 60 s of the budget left"; done
    continue
  fi
  gen_wait "$f"
  if [ ! -s "$WORK/models/$f.gguf" ]; then
    for b in "${BACKENDS[@]}"; do skip "bench-$b-$f" "the file was not written (see model-$f)"; done
    continue
  fi
  for b in "${BACKENDS[@]}"; do
    if [ $b = vulkan ] && ((!VK_BENCH)); then skip "bench-$b-$f" "no Vulkan GPU device: $(grep '^vulkanBackend' "$WORK/notes.tsv" | cut -f2)"; continue; fi
    if [ -n "${HUNG[$b]:-}" ]; then skip "bench-$b-$f" "${HUNG[$b]}"; continue; fi
    if [[ $f == 8b-* ]] && (($(left) < 45)); then skip "bench-$b-$f" "under 45 s of the budget left"; continue; fi
    step "bench-$b-$f" 150 "${TSX[@]}" scripts/gpu-check.mts bench "$b" "$WORK/models/$f.gguf" "$WORK/steps/bench-$b-$f.json" "$PP" "$TG"
    timed_out "bench-$b-$f" && HUNG[$b]="bench-$b-$f timed out"
  done
  [[ $f == 8b-* ]] && rm -f "$WORK/models/$f.gguf" # the 8B files are large; the disk is not
done
for f in "${FILES[@]}"; do gen_wait "$f" cancel; done

# ---- the report -------------------------------------------------------------------------------------------------------
note seconds "$(($(date +%s) - T0))"
GPU=$GPU OUT=$OUT WORK=$WORK node --input-type=module - <<'EOF'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const { WORK, OUT } = process.env;
const read = (p) => { try { return JSON.parse(readFileSync(p, 'utf8')); } catch (e) { return undefined; } };
// A step's result printed as its log's last line.
const lastLine = (name) => { try { return JSON.parse(readFileSync(join(WORK, 'logs', `${name}.log`), 'utf8').trim().split('\n').pop()); } catch (e) { return undefined; } };
const notes = Object.fromEntries(readFileSync(join(WORK, 'notes.tsv'), 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t')));
const steps = {};
for (const f of readdirSync(join(WORK, 'steps')).filter((f) => f.endsWith('.step')).sort()) {
  const [status, seconds, detail] = readFileSync(join(WORK, 'steps', f), 'utf8').replace(/\n$/, '').split('\t');
  const name = f.slice(0, -5);
  steps[name] = { status, seconds: Number(seconds), ...(status === 'ok' ? {} : { detail }) };
}
// Peak memory bandwidth (B/s) and dense FP16/BF16 tensor-core throughput (flop/s), by the GPU's name (vendor sheets).
const PEAKS = [
  [/B200/i, 8.0e12, 2250e12], [/H200|GH200/i, 4.8e12, 989e12], [/H100.*NVL/i, 3.9e12, 835e12], [/H100.*PCIe/i, 2.0e12, 756e12],
  [/H100/i, 3.35e12, 989e12], [/A100.*80/i, 2.039e12, 312e12], [/A100/i, 1.555e12, 312e12], [/L40S/i, 0.864e12, 362e12],
  [/L40\b/i, 0.864e12, 181e12], [/\bL4\b/i, 0.3e12, 121e12], [/A10\b/i, 0.6e12, 125e12], [/RTX 4090/i, 1.008e12, 165e12],
  [/RTX 3090/i, 0.936e12, 71e12], [/T4\b/i, 0.32e12, 65e12], [/V100/i, 0.9e12, 125e12],
];
const gpuFields = (notes.gpuQuery ?? '').split(',').map((s) => s.trim());
const gpu = process.env.GPU === '1' ? {
  name: gpuFields[0], memoryMiB: Number(gpuFields[1]), memoryClockMHz: Number(gpuFields[2]), smClockMHz: Number(gpuFields[3]),
  driver: gpuFields[4], computeCapability: gpuFields[5], cuda: notes.cudaVersion,
} : null;
let peak = null;
if (process.env.GPU_CHECK_PEAK_BW_GBS || process.env.GPU_CHECK_PEAK_TFLOPS) {
  peak = { bandwidth: Number(process.env.GPU_CHECK_PEAK_BW_GBS) * 1e9 || null, flops: Number(process.env.GPU_CHECK_PEAK_TFLOPS) * 1e12 || null, source: 'GPU_CHECK_PEAK_BW_GBS / GPU_CHECK_PEAK_TFLOPS' };
} else if (gpu) {
  const row = PEAKS.find(([re]) => re.test(gpu.name ?? ''));
  peak = row ? { bandwidth: row[1], flops: row[2], source: `table: ${row[0]}` } : { bandwidth: null, flops: null, source: `${gpu.name} is not in the table (set GPU_CHECK_PEAK_BW_GBS and GPU_CHECK_PEAK_TFLOPS)` };
} else {
  const dram = lastLine('dram-bandwidth');
  peak = { bandwidth: dram ? dram.readGBs * 1e9 : null, flops: null, source: 'no GPU: the measured DRAM read bandwidth (the Vulkan device is the CPU)' };
}
const ops = {}, golden = {}, bench = [];
for (const f of readdirSync(join(WORK, 'steps')).sort()) {
  const v = f.endsWith('.json') ? read(join(WORK, 'steps', f)) : undefined;
  if (!v) continue;
  if (f.startsWith('ops-')) {
    const failed = (v.cases ?? []).filter((c) => c.status === 'fail' || c.status === 'error');
    ops[f.slice(4, -5)] = { device: v.device, score: v.score, unavailable: v.unavailable, passed: v.passed, failed: v.failed, skipped: v.skipped, seconds: v.seconds,
      failures: failed.slice(0, 40).map((c) => ({ name: c.name, nmse: c.nmse, tolerance: c.tolerance, message: c.message })) };
  } else if (f.startsWith('golden-')) golden[f.slice(7, -5)] = v;
  else if (f.startsWith('bench-')) {
    const tg = v.tg?.tokensPerSecond, pp = v.pp?.tokensPerSecond;
    const tgRooflineFraction = tg && peak.bandwidth ? (tg * v.bytesPerToken) / peak.bandwidth : null;
    const ppTensorPeakFraction = pp && peak.flops ? (pp * v.flopsPerPromptToken) / peak.flops : null;
    // The issue's targets: decode at least 80% of the roofline; pp at least 25% of the tensor peak on F16 and Q8_0.
    const meetsTargets = !gpu ? { tg: null, pp: null } : { tg: tgRooflineFraction == null ? null : tgRooflineFraction >= 0.8,
      pp: ppTensorPeakFraction == null || !['F16', 'Q8_0'].includes(v.type) ? null : ppTensorPeakFraction >= 0.25 };
    bench.push({ step: f.slice(0, -5), ...v, tgRooflineFraction, ppTensorPeakFraction, meetsTargets });
  }
}
const report = { date: new Date().toISOString(), machine: { ...notes }, gpu, peak, backends: lastLine('system-info') ?? null, steps, ops, golden, bench,
  targets: { tgRooflineFraction: 0.8, ppTensorPeakFraction: { F16: 0.25, Q8_0: 0.25 } } };
writeFileSync(OUT, JSON.stringify(report, null, 2) + '\n');
const pct = (x) => (x == null ? '-' : `${(100 * x).toFixed(1)}%`);
console.log(`\ngpu-check: ${gpu ? `${gpu.name}, ${gpu.memoryMiB} MiB, driver ${gpu.driver}` : 'no NVIDIA GPU (degraded run)'}; peak ${peak.bandwidth ? (peak.bandwidth / 1e9).toFixed(0) + ' GB/s' : '?'}${peak.flops ? `, ${(peak.flops / 1e12).toFixed(0)} TFLOPS` : ''} (${peak.source})`);
for (const [b, o] of Object.entries(ops)) console.log(`ops ${b}: ${o.unavailable ? `unavailable (${o.unavailable.reason})` : `${o.passed} passed, ${o.failed} failed, ${o.skipped} skipped on ${o.device}`}`);
for (const [b, g] of Object.entries(golden)) console.log(`golden ${b}: ${g.ok ? 'ok' : 'FAIL'} (tokens ${g.tokensEqual ? 'equal' : `differ at ${g.firstDifferentToken}`}, logits max diff ${g.logitsMaxDiffVsReference.toExponential(2)} vs reference, ${g.logitsMaxDiffVsCpu.toExponential(2)} vs CPU)`);
const mark = (m) => (m == null ? '' : m ? ' ok' : ' below target');
for (const r of bench) console.log(`${r.step}: ${r.pp?.test ?? 'pp'} ${r.pp?.tokensPerSecond?.toFixed(1) ?? '-'} t/s (${pct(r.ppTensorPeakFraction)} of tensor peak${mark(r.meetsTargets.pp)}), ${r.tg?.test ?? 'tg'} ${r.tg?.tokensPerSecond?.toFixed(1) ?? '-'} t/s (${pct(r.tgRooflineFraction)} of roofline${mark(r.meetsTargets.tg)})`);
const bad = Object.entries(steps).filter(([, s]) => s.status !== 'ok');
for (const [n, s] of bad) console.log(`${n}: ${s.status}${s.detail ? ': ' + s.detail.slice(-300) : ''}`);
console.log(`written: ${OUT} (${notes.seconds} s)`);
EOF
