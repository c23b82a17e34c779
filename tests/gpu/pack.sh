#!/usr/bin/env bash
# Packs what tests/gpu/run_on_device.sh needs into one directory that runs
# on a machine whose glibc is unknown: the binaries, every shared library
# they link (ldd), the dynamic loader and glibc of THIS machine, and
# progs/gds_map.o.  The binaries are started through the bundled loader
# (ld-linux-x86-64.so.2 --library-path), so the target's own libc is never
# used; only libcuda.so.1 comes from the target (dlopen: the driver's).
# Usage: tests/gpu/pack.sh [BUILD_DIR] [OUT_DIR]   (default: build build/gpu-bundle)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
out=${2:-$build/gpu-bundle}
bins=("$build/app/rosenbridged/rosenbridged" "$build/app/rosen-io/rosen-io" "$build/bench/gds/gds_bench")
for b in "${bins[@]}" "$build/progs/gds_map.o"; do
  [ -f "$b" ] || { echo "pack: $b is missing (ninja -C $build)" >&2; exit 1; }
done
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/share/rosenbridge/progs"
cp "${bins[@]}" "$out/bin/"
cp "$build/progs/gds_map.o" "$out/share/rosenbridge/progs/"
cp tests/gpu/run_on_device.sh "$out/"
# Every library the binaries link, the loader and the pieces of glibc a
# dlopen'ed libcuda.so.1 may ask for (libdl, libpthread, librt, libm).
for b in "${bins[@]}"; do
  ldd "$b" | awk '/=> \//{print $3} /^\t\/lib/{print $1}'
done | sort -u | while read -r lib; do cp -L "$lib" "$out/lib/"; done
libdir=$(dirname "$(ldd "${bins[0]}" | awk '/libc.so.6/{print $3}')")
for l in libdl.so.2 libpthread.so.0 librt.so.1 libm.so.6; do
  [ -e "$libdir/$l" ] && cp -L "$libdir/$l" "$out/lib/"
done
loader=$(ls "$out"/lib/ld-linux-x86-64.so.2)
[ -x "$loader" ] || chmod +x "$loader"
echo "glibc $(ldd --version | head -n1 | awk '{print $NF}') from $(. /etc/os-release; echo "$PRETTY_NAME")" > "$out/BUILT_ON"
du -sh "$out" | awk '{print "pack: " $2 " (" $1 "); carry it and run: " $2 "/run_on_device.sh"}'
