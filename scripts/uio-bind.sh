#!/bin/sh
# SPDX-License-Identifier: MIT
# Hands a virtio-blk PCI device to user space for librosen's pci:BDF
# transport: loads uio_pci_generic, moves the device from its driver to it,
# and reserves 2 MiB hugepages for DMA memory.  Run as root inside the VM.
# It never touches a device that is not a virtio device (vendor 1af4).
#
# Usage: scripts/uio-bind.sh [--hugepages N] [--modules DIR] BDF
#   BDF              PCI address, e.g. 0000:00:05.0 (see lspci -D, or
#                    /sys/bus/pci/devices/*/device: 0x1042 is modern virtio-blk;
#                    QEMU: -device vhost-user-blk-pci,...,disable-legacy=on)
#   --hugepages N    make sure N free 2 MiB hugepages exist (default 32 =
#                    librosen's default 64 MiB of DMA memory; 0: leave as is)
#   --modules DIR    insmod DIR/uio.ko and DIR/uio_pci_generic.ko instead of
#                    modprobe (for minimal systems without modprobe/depmod)
# Sh-compatible: runs under busybox sh too.  Undo: echo BDF >
# /sys/bus/pci/drivers/uio_pci_generic/unbind; echo > .../BDF/driver_override;
# echo BDF > /sys/bus/pci/drivers_probe.
set -eu

die() { echo "uio-bind: error: $*" >&2; exit 1; }
say() { echo "uio-bind: $*"; }

hugepages=32
moddir=""
bdf=""
while [ $# -gt 0 ]; do
  case "$1" in
    --hugepages) [ $# -ge 2 ] || die "--hugepages needs a number"; hugepages=$2; shift 2 ;;
    --modules) [ $# -ge 2 ] || die "--modules needs a directory"; moddir=$2; shift 2 ;;
    -h|--help) sed -n '3,/^set -eu/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) [ -z "$bdf" ] || die "one BDF only"; bdf=$1; shift ;;
  esac
done
[ -n "$bdf" ] || die "usage: uio-bind.sh [--hugepages N] [--modules DIR] BDF"
case "$hugepages" in ''|*[!0-9]*) die "--hugepages '$hugepages' is not a number" ;; esac
# Short form BB:DD.F means domain 0000.
case "$bdf" in ??:??.?) bdf="0000:$bdf" ;; esac
case "$bdf" in
  [0-9a-f][0-9a-f][0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f].[0-7]) ;;
  *) die "'$bdf' is not a PCI address like 0000:00:05.0 (lower-case hex)" ;;
esac
[ "$(id -u)" = 0 ] || die "must run as root"

dev=/sys/bus/pci/devices/$bdf
[ -d "$dev" ] || die "no PCI device $bdf (is it in $(ls /sys/bus/pci/devices | tr '\n' ' ')?)"
vendor=$(cat "$dev/vendor")
device=$(cat "$dev/device")
[ "$vendor" = 0x1af4 ] || die "$bdf is $vendor:$device, not a virtio device (vendor 0x1af4)"
case "$device" in
  0x1042) ;;
  0x1001) say "warning: $bdf is transitional (1af4:1001); librosen needs its modern interface (QEMU: disable-legacy=on)" ;;
  *) die "$bdf is 1af4:${device#0x}, not virtio-blk (1042, or transitional 1001)" ;;
esac

# 1. the driver
drivers=/sys/bus/pci/drivers
if [ ! -d "$drivers/uio_pci_generic" ]; then
  if [ -n "$moddir" ]; then
    for m in uio uio_pci_generic; do
      grep -q "^$m " /proc/modules || insmod "$moddir/$m.ko" || die "insmod $moddir/$m.ko failed"
    done
  else
    modprobe uio_pci_generic || die "modprobe uio_pci_generic failed (no module? try --modules DIR)"
  fi
fi
[ -d "$drivers/uio_pci_generic" ] || die "uio_pci_generic did not register"

# 2. the binding
current=""
[ -e "$dev/driver" ] && current=$(basename "$(readlink "$dev/driver")")
if [ "$current" = uio_pci_generic ]; then
  say "$bdf is already bound to uio_pci_generic"
else
  if [ -n "$current" ]; then
    say "unbinding $bdf from $current"
    echo "$bdf" >"$dev/driver/unbind" || die "unbinding $bdf from $current failed"
  fi
  # driver_override binds this one device only; new_id would also grab
  # every other unbound device with the same ids.
  if [ -e "$dev/driver_override" ]; then
    echo uio_pci_generic >"$dev/driver_override"
    echo "$bdf" >/sys/bus/pci/drivers_probe 2>/dev/null || true
  else
    echo "${vendor#0x} ${device#0x}" >"$drivers/uio_pci_generic/new_id" 2>/dev/null || true
    [ -e "$dev/driver" ] || echo "$bdf" >"$drivers/uio_pci_generic/bind" 2>/dev/null || true
  fi
  now=""
  [ -e "$dev/driver" ] && now=$(basename "$(readlink "$dev/driver")")
  [ "$now" = uio_pci_generic ] ||
    die "$bdf did not bind to uio_pci_generic (driver now: ${now:-none}; see dmesg)"
  say "bound $bdf (1af4:${device#0x}) to uio_pci_generic ($(ls "$dev/uio" 2>/dev/null | tr '\n' ' '))"
fi

# 3. hugepages for DMA memory (librosen needs 2 MiB pages)
if [ "$hugepages" -gt 0 ]; then
  # The 2 MiB pool itself (the same as /proc/sys/vm/nr_hugepages when
  # 2 MiB is the default hugepage size, which it is on x86 by default).
  pool=/sys/kernel/mm/hugepages/hugepages-2048kB
  [ -d "$pool" ] || die "no 2 MiB hugepage support in this kernel ($pool missing)"
  nr=$pool/nr_hugepages
  total=$(cat "$nr")
  free=$(cat "$pool/free_hugepages")
  if [ "$free" -lt "$hugepages" ]; then
    want=$((total + hugepages - free))
    echo "$want" >"$nr"
    got=$(cat "$nr")
    [ "$got" -ge "$want" ] ||
      die "asked for $want hugepages, got $got (memory too fragmented or too small: reserve them at boot with hugepages=$want)"
    say "reserved hugepages: $total -> $got (2 MiB each)"
  else
    say "$free free 2 MiB hugepages (>= $hugepages)"
  fi
fi
say "ready: open pci:$bdf with librosen (as root)"
