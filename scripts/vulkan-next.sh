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
#                                                lavapipe alone; its children run on the system's libraries again
# The tests that need the new lavapipe (test/native/backend-ops.test.ts, test/model/vulkan.test.ts) skip with the
# reason where .cache/vulkan-next is missing. Only the Debian archive is contacted (deb.debian.org, unstable).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=$PWD/.cache/vulkan-next
if [ -e "$DIR/versions.txt" ] && [ "${1:-}" != --force ]; then
  echo "vulkan-next: already fetched ($DIR)"
  cat "$DIR/versions.txt"
  exit 0
fi
command -v apt-get >/dev/null && command -v dpkg >/dev/null || { echo "vulkan-next: needs apt-get and dpkg (Debian or Ubuntu)" >&2; exit 1; }
ARCH=$(dpkg --print-architecture)
case $ARCH in
  amd64) TRIPLET=x86_64-linux-gnu LDSO=ld-linux-x86-64.so.2 ;;
  arm64) TRIPLET=aarch64-linux-gnu LDSO=ld-linux-aarch64.so.1 ;;
  *) echo "vulkan-next: no recipe for $ARCH" >&2; exit 1 ;;
esac
rm -rf "$DIR"
mkdir -p "$DIR/apt/lists/partial" "$DIR/apt/cache/archives/partial" "$DIR/debs" "$DIR/root" "$DIR/bin"
echo "deb http://deb.debian.org/debian sid main" >"$DIR/apt/sources.list"
APT=(-o "Dir::Etc::sourcelist=$DIR/apt/sources.list" -o Dir::Etc::sourceparts=/dev/null -o "Dir::State::Lists=$DIR/apt/lists"
  -o "Dir::Cache=$DIR/apt/cache" -o "Dir::State::status=/dev/null" -o "APT::Architecture=$ARCH" -o "APT::Architectures=$ARCH"
  -o Debug::NoLocking=1 -o APT::Sandbox::User=root -o Acquire::Retries=3)
apt-get "${APT[@]}" -qq update
PKGS=(mesa-vulkan-drivers libvulkan1 glslc spirv-tools)
# Every package they depend on, recursively (the archive's status file is empty: nothing counts as installed).
mapfile -t DEPS < <(apt-cache "${APT[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
  --no-enhances "${PKGS[@]}" | grep -E '^[a-z0-9][a-z0-9.+-]*$' | sort -u)
(cd "$DIR/debs" && apt-get "${APT[@]}" -qq download "${DEPS[@]}")
for d in "$DIR"/debs/*.deb; do dpkg -x "$d" "$DIR/root"; done
LIB=$DIR/root/usr/lib/$TRIPLET
[ -x "$LIB/$LDSO" ] || { echo "vulkan-next: no $LDSO in the unpacked libc6" >&2; exit 1; }
# lavapipe's ICD file with its library's full path.
sed "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$LIB/libvulkan_lvp.so\"#" "$DIR"/root/usr/share/vulkan/icd.d/lvp_icd*.json >"$DIR/lvp_icd.json"
for tool in glslc spirv-val; do
  printf '#!/bin/sh\nexec "%s" --library-path "%s" "%s" "$@"\n' "$LIB/$LDSO" "$LIB" "$DIR/root/usr/bin/$tool" >"$DIR/bin/$tool"
done
cat >"$DIR/bin/run" <<EOF
#!/bin/sh
# run PROGRAM ARGS...: PROGRAM (an ELF file or a name on PATH) on the new C library, loader and lavapipe alone.
p=\$(command -v "\$1") || { echo "run: \$1 not found" >&2; exit 127; }
shift
VK_DRIVER_FILES="$DIR/lvp_icd.json" VK_ICD_FILENAMES="$DIR/lvp_icd.json" VK_LOADER_LAYERS_DISABLE='~implicit~' \\
  exec "$LIB/$LDSO" --library-path "$LIB" "\$p" "\$@"
EOF
chmod +x "$DIR/bin/"*
rm -rf "$DIR/debs" "$DIR/apt"
# The versions (sed reads to the end: no SIGPIPE under pipefail).
{
  "$DIR/bin/glslc" --version | sed -n 1,3p | tr '\n' ' '
  echo
  "$DIR/bin/spirv-val" --version | sed -n 1p
  grep -o '"api_version": *"[^"]*"' "$DIR/lvp_icd.json"
  strings "$LIB/libvulkan_lvp.so" | grep -o 'Mesa [0-9][0-9.]*[^ ]*' | sed -n 1p
} >"$DIR/versions.txt.new"
mv "$DIR/versions.txt.new" "$DIR/versions.txt" # written last: its presence means a complete fetch
echo "vulkan-next: fetched into $DIR"
cat "$DIR/versions.txt"
