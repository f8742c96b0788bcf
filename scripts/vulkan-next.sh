#!/usr/bin/env bash
# Fetches Debian unstable's Vulkan driver and shader tools into .cache/vulkan-next, beside (never into) the system:
# lavapipe from a Mesa that has VK_KHR_cooperative_matrix (24.2 and later; Debian 12 has 22.3), the Vulkan loader,
# and a glslc and spirv-val that know GL_KHR_cooperative_matrix / SPV_KHR_cooperative_matrix (Debian 12's do not),
# with every library they need, C library included. Nothing is installed: the packages are unpacked with dpkg -x, and
# each program runs through the unpacked C library's own loader.
#
#   bash scripts/vulkan-next.sh [--force]     fetch (again with --force); prints the versions
#
# Afterwards:
#   .cache/vulkan-next/bin/glslc, bin/spirv-val  the new tools (CMake uses them for the KHR cooperative-matrix tiles
#                                                where the build's own glslc cannot compile them)
#   .cache/vulkan-next/bin/run PROGRAM ARGS...    runs an ELF program (node, build/Release/backend-ops) on the new
#                                                C library, loader and lavapipe alone; its children run on the
#                                                system's libraries again (but inherit VK_DRIVER_FILES, naming a
#                                                lavapipe the system's C library cannot load)
# The tests that need the new lavapipe (test/native/backend-ops.test.ts, test/model/vulkan.test.ts) skip with the
# reason where .cache/vulkan-next is missing, and fail instead where OPEN_AUTOGLM_REQUIRE_VULKAN_NEXT=1 (.ci/run sets
# it once this script has succeeded). Only the Debian archive is contacted (deb.debian.org, unstable), its Release
# file checked against Debian's archive keyring (Debian has it; on Ubuntu, install debian-archive-keyring).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=$PWD/.cache/vulkan-next
if [ -e "$DIR/versions.txt" ] && [ "${1:-}" != --force ]; then
  echo "vulkan-next: already fetched ($DIR)"
  cat "$DIR/versions.txt"
  exit 0
fi
command -v apt-get >/dev/null && command -v dpkg >/dev/null || { echo "vulkan-next: needs apt-get and dpkg (Debian or Ubuntu)" >&2; exit 1; }
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -e "$KEYRING" ] || { echo "vulkan-next: no $KEYRING (apt-get install debian-archive-keyring)" >&2; exit 1; }
ARCH=$(dpkg --print-architecture)
case $ARCH in
  amd64) TRIPLET=x86_64-linux-gnu LDSO=ld-linux-x86-64.so.2 ;;
  arm64) TRIPLET=aarch64-linux-gnu LDSO=ld-linux-aarch64.so.1 ;;
  *) echo "vulkan-next: no recipe for $ARCH" >&2; exit 1 ;;
esac
rm -rf "$DIR"
mkdir -p "$DIR/apt/lists/partial" "$DIR/apt/cache/archives/partial" "$DIR/debs" "$DIR/root" "$DIR/bin"
echo "deb [signed-by=$KEYRING] http://deb.debian.org/debian sid main" >"$DIR/apt/sources.list"
APT=(-o "Dir::Etc::sourcelist=$DIR/apt/sources.list" -o Dir::Etc::sourceparts=/dev/null -o "Dir::State::Lists=$DIR/apt/lists"
  -o "Dir::Cache=$DIR/apt/cache" -o "Dir::State::status=/dev/null" -o "APT::Architecture=$ARCH" -o "APT::Architectures=$ARCH"
  -o Debug::NoLocking=1 -o APT::Sandbox::User=root -o Acquire::Retries=3)
apt-get "${APT[@]}" -qq update
PKGS=(mesa-vulkan-drivers libvulkan1 glslc spirv-tools)
# Every package they depend on, recursively (the status file is empty: nothing counts as installed).
apt-cache "${APT[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances \
  "${PKGS[@]}" >"$DIR/apt/depends.txt"
grep -E '^[a-z0-9][a-z0-9.+-]*$' "$DIR/apt/depends.txt" | sort -u >"$DIR/apt/packages.txt"
for p in "${PKGS[@]}" libc6; do
  grep -qx -- "$p" "$DIR/apt/packages.txt" || { echo "vulkan-next: apt-cache did not resolve $p" >&2; exit 1; }
done
mapfile -t DEPS <"$DIR/apt/packages.txt"
(cd "$DIR/debs" && apt-get "${APT[@]}" -qq download "${DEPS[@]}")
for d in "$DIR"/debs/*.deb; do dpkg -x "$d" "$DIR/root"; done
LIB=$DIR/root/usr/lib/$TRIPLET
[ -x "$LIB/$LDSO" ] || { echo "vulkan-next: no $LDSO in the unpacked libc6" >&2; exit 1; }
# lavapipe's ICD file with its library's full path (escaped for sed).
esc=$(printf '%s' "$LIB/libvulkan_lvp.so" | sed 's/[\\&#]/\\&/g')
sed "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$esc\"#" "$DIR"/root/usr/share/vulkan/icd.d/lvp_icd*.json >"$DIR/lvp_icd.json"
# The wrappers find everything from where they are: no path is written into them.
for tool in glslc spirv-val; do
  cat >"$DIR/bin/$tool" <<WRAP
#!/bin/sh
d=\$(cd "\$(dirname "\$0")/.." && pwd)
exec "\$d/root/usr/lib/$TRIPLET/$LDSO" --library-path "\$d/root/usr/lib/$TRIPLET" "\$d/root/usr/bin/$tool" "\$@"
WRAP
done
cat >"$DIR/bin/run" <<WRAP
#!/bin/sh
# run PROGRAM ARGS...: PROGRAM (an ELF file or a name on PATH) on the new C library, loader and lavapipe alone.
d=\$(cd "\$(dirname "\$0")/.." && pwd)
p=\$(command -v "\$1") || { echo "run: \$1 not found" >&2; exit 127; }
shift
VK_DRIVER_FILES="\$d/lvp_icd.json" VK_ICD_FILENAMES="\$d/lvp_icd.json" VK_LOADER_LAYERS_DISABLE='~implicit~' \\
  exec "\$d/root/usr/lib/$TRIPLET/$LDSO" --library-path "\$d/root/usr/lib/$TRIPLET" "\$p" "\$@"
WRAP
chmod +x "$DIR/bin/"*
rm -rf "$DIR/debs" "$DIR/apt"
"$DIR/bin/glslc" --version >/dev/null && "$DIR/bin/spirv-val" --version >/dev/null # they run
# The versions (sed reads to the end: no SIGPIPE under pipefail).
{
  "$DIR/bin/glslc" --version | sed -n 1,3p | tr '\n' ' '
  echo
  "$DIR/bin/spirv-val" --version | sed -n 1p
  grep -o '"api_version": *"[^"]*"' "$DIR/lvp_icd.json" || true
  { strings "$LIB/libvulkan_lvp.so" 2>/dev/null || true; } | { grep -o 'Mesa [0-9][0-9.]*[^ ]*' || true; } | sed -n 1p
} >"$DIR/versions.txt.new"
mv "$DIR/versions.txt.new" "$DIR/versions.txt" # written last: its presence means a complete fetch
echo "vulkan-next: fetched into $DIR"
cat "$DIR/versions.txt"
