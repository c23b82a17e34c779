#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fetches what a test guest boots: the Debian kernel that linux-image-amd64
# currently depends on, the virtio/uio modules our tests load, and
# busybox-static.  Nothing is installed: the .debs are fetched with
# `apt-get download` and unpacked with `dpkg -x`.
#
# Usage: tests/e2e/guest/fetch-kernel.sh [--cache DIR] [--force]
#
# Leaves in DIR (default ${ROSEN_CACHE:-$HOME/.cache/rosenbridge}/guest):
#   vmlinuz            the kernel image (bzImage)
#   vmlinux            the same kernel decompressed (ELF), when it has the
#                      PVH entry point (CONFIG_PVH=y): QEMU boots it directly,
#                      which skips the slow decompression under TCG (about 3 s)
#   modules/NAME.ko    uncompressed modules, NAME from MODULES and FS_MODULES
#                      below (/init loads MODULES; tests that want a
#                      filesystem load FS_MODULES themselves, in that order)
#   busybox            the static busybox binary
#   versions           what was fetched (the cache key)
# and prints DIR as its last line on stdout (everything else goes to stderr).
# A second run with the same resolved versions does nothing.  If apt cannot
# resolve versions (no package lists) a complete cache is used as it is.
set -euo pipefail

# Load order matters: each module needs the ones before it.
MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev
         virtio_pci virtio_blk uio uio_pci_generic)
# ext4 and what it needs: mkfs.ext4's default metadata_csum wants crc32c,
# and busybox has no modprobe to find crc32c_generic by itself.
FS_MODULES=(crc16 mbcache jbd2 crc32c_generic ext4)

cache="${ROSEN_CACHE:-$HOME/.cache/rosenbridge}/guest"
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --cache) cache="$2"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '3,/^set -e/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    *) echo "fetch-kernel: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

log() { echo "fetch-kernel: $*" >&2; }
die() { echo "fetch-kernel: error: $*" >&2; exit 1; }

for tool in apt-cache apt-get dpkg; do
  command -v "$tool" >/dev/null || die "'$tool' not found (this script needs Debian's apt tools)"
done

cache_complete() {
  [ -f "$cache/vmlinuz" ] && [ -x "$cache/busybox" ] && [ -f "$cache/versions" ] || return 1
  grep -q '^vmlinux no$' "$cache/versions" || [ -f "$cache/vmlinux" ] || return 1
  local m
  for m in "${MODULES[@]}" "${FS_MODULES[@]}"; do
    [ -f "$cache/modules/$m.ko" ] || return 1
  done
}

# candidate_version PKG: the version apt would fetch (from $policy), or nothing.
candidate_version() {
  awk -v p="$1:" '/^[^ ]/ { cur = $1 } cur == p && /^ *Candidate:/ { print $2; exit }' <<<"$policy"
}

# extract_vmlinux BZIMAGE OUT: finds the compressed payload in a bzImage and
# decompresses it; succeeds only if the result is an ELF file.
extract_vmlinux() {
  local img=$1 out=$2 magic tool off pat i
  for pair in 'fd377a585a00:xz -dcq' '28b52ffd:zstd -dcq' '1f8b0800:gzip -dcq'; do
    magic=${pair%%:*}
    tool=${pair#*:}
    command -v "${tool%% *}" >/dev/null || continue
    pat=""
    for ((i = 0; i < ${#magic}; i += 2)); do pat+="\\x${magic:i:2}"; done
    # byte offsets of the magic; try each (the first may be a false hit)
    for off in $(LC_ALL=C grep -obUaP "$pat" "$img" 2>/dev/null | cut -d: -f1 | head -n 4); do
      # the decompressor complains about the data after the stream: ignore it
      tail -c +$((off + 1)) "$img" | $tool >"$out" 2>/dev/null || true
      if [ "$(head -c 4 "$out" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
        return 0
      fi
    done
  done
  rm -f "$out"
  return 1
}

# One fetch at a time per cache (parallel test runs share it).
mkdir -p "$cache" || die "cannot create cache directory $cache"
exec 9>"$cache/.lock"
flock 9 || die "cannot lock $cache/.lock"

# --- resolve what to fetch -------------------------------------------------
kpkg="${ROSEN_GUEST_KERNEL_PKG:-}"
if [ -z "$kpkg" ]; then
  kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
         awk '/^ *Depends: linux-image-[0-9]/ { print $2; exit }') || true
fi
kver=""
bbver=""
if [ -n "$kpkg" ]; then
  policy=$(apt-cache policy "$kpkg" busybox-static 2>/dev/null) || true
  kver=$(candidate_version "$kpkg")
  bbver=$(candidate_version busybox-static)
fi
if [ -z "$kpkg" ] || [ -z "$kver" ] || [ -z "$bbver" ] || [ "$kver" = "(none)" ] || [ "$bbver" = "(none)" ]; then
  if cache_complete && [ "$force" -eq 0 ]; then
    log "warning: apt could not resolve the kernel (run 'apt-get update'?); using the cache as it is:"
    sed 's/^/  /' "$cache/versions" >&2
    echo "$cache"
    exit 0
  fi
  die "cannot resolve the kernel package: 'apt-cache depends linux-image-amd64' and 'apt-cache policy' gave package='$kpkg' version='$kver', busybox-static version='$bbver'. Run 'apt-get update' (the package lists may be missing)."
fi

want=$(printf 'kernel %s %s\nbusybox-static %s\nmodules %s\nfsmodules %s\n' "$kpkg" "$kver" "$bbver" "${MODULES[*]}" "${FS_MODULES[*]}")
if [ "$force" -eq 0 ] && cache_complete && [ "$(grep -v '^vmlinux \|^release ' "$cache/versions")" = "$want" ]; then
  log "cache up to date ($kpkg $kver, busybox-static $bbver) in $cache"
  echo "$cache"
  exit 0
fi

# --- fetch and unpack ------------------------------------------------------
work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

log "downloading $kpkg $kver and busybox-static $bbver"
apt_opts=()
# As root, apt drops to the _apt user, who cannot write into our temp dir.
[ "$(id -u)" -eq 0 ] && apt_opts+=(-o APT::Sandbox::User=root)
if ! (cd "$work" && apt-get "${apt_opts[@]}" download -q "$kpkg=$kver" "busybox-static=$bbver" >&2); then
  die "apt-get download of $kpkg=$kver busybox-static=$bbver failed (is the Debian mirror reachable? is the package list current: 'apt-get update'?)"
fi

found=("$work"/"$kpkg"_*.deb); kdeb=${found[0]}
found=("$work"/busybox-static_*.deb); bdeb=${found[0]}
[ -f "$kdeb" ] || die "apt-get download produced no $kpkg .deb"
[ -f "$bdeb" ] || die "apt-get download produced no busybox-static .deb"

log "unpacking"
dpkg -x "$kdeb" "$work/k" || die "dpkg -x $kdeb failed"
dpkg -x "$bdeb" "$work/b" || die "dpkg -x $bdeb failed"

found=("$work"/k/boot/vmlinuz-*); vmlinuz=${found[0]}
[ -f "$vmlinuz" ] || die "no /boot/vmlinuz-* in $kpkg"
found=("$work"/k/lib/modules/*/); moddir=${found[0]}
[ -d "$moddir" ] || die "no /lib/modules/<version>/ in $kpkg"
[ -x "$work/b/bin/busybox" ] || die "no /bin/busybox in busybox-static"

mkdir -p "$work/out/modules"
cp "$vmlinuz" "$work/out/vmlinuz"
have_vmlinux=no
if grep -q '^CONFIG_PVH=y' "$work"/k/boot/config-* 2>/dev/null; then
  if extract_vmlinux "$vmlinuz" "$work/out/vmlinux"; then
    have_vmlinux=yes
  else
    log "warning: could not decompress $(basename "$vmlinuz"); guests boot the slower bzImage"
  fi
fi
# The kernel release (uname -r): modules for the guest build against
# /usr/src/linux-headers-<release> (scripts/setup.sh installs them).
want="$want"$'\n'"vmlinux $have_vmlinux"$'\n'"release $(basename "$moddir")"
cp "$work/b/bin/busybox" "$work/out/busybox"
for m in "${MODULES[@]}" "${FS_MODULES[@]}"; do
  # Debian 12 ships plain .ko files, later kernels may compress them.
  # Busybox insmod loads only plain ELF here, so decompress on the host.
  f=$(find "$moddir" \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" -o -name "$m.ko.gz" \) | head -n 1)
  if [ -z "$f" ]; then
    if grep -q "/$m\.ko" "$moddir/modules.builtin" 2>/dev/null; then
      die "module $m is built into $kpkg; the guest /init expects it as a module (adjust MODULES and mkinitramfs.sh)"
    fi
    die "module $m not found in $kpkg"
  fi
  case "$f" in
    *.ko)     cp "$f" "$work/out/modules/$m.ko" ;;
    *.ko.xz)  command -v xz >/dev/null || die "xz is needed to decompress $f (apt-get install xz-utils)"
              xz -dc "$f" >"$work/out/modules/$m.ko" ;;
    *.ko.zst) command -v zstd >/dev/null || die "zstd is needed to decompress $f (apt-get install zstd)"
              zstd -qdc "$f" >"$work/out/modules/$m.ko" ;;
    *.ko.gz)  gzip -dc "$f" >"$work/out/modules/$m.ko" ;;
  esac
done
echo "$want" >"$work/out/versions"

# Replace the cache contents only once everything is in place.
rm -rf "$cache/modules" "$cache/vmlinuz" "$cache/vmlinux" "$cache/busybox" "$cache/versions"
mv "$work/out/modules" "$work/out/vmlinuz" "$work/out/busybox" "$cache/"
[ "$have_vmlinux" = yes ] && mv "$work/out/vmlinux" "$cache/vmlinux"
mv "$work/out/versions" "$cache/versions"
log "ready: $kpkg $kver ($(basename "$vmlinuz"), PVH vmlinux: $have_vmlinux), $((${#MODULES[@]} + ${#FS_MODULES[@]})) modules, busybox-static $bbver in $cache"
echo "$cache"
