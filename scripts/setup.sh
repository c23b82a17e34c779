#!/usr/bin/env bash
# Installs what RosenBridge needs to build and test on Debian 12, when it is
# missing.  Safe to run again: it only calls apt-get for absent packages.
set -euo pipefail

PACKAGES=(
  gcc libc6-dev pkg-config meson ninja-build python3
  libelf-dev zlib1g-dev liburing-dev libbpf-dev linux-libc-dev
  clang-19 llvm-19 libclang-rt-19-dev
  qemu-system-x86 qemu-system-common cpio xz-utils e2fsprogs
  linux-headers-amd64 make
  gnuplot-nox fio
  libjson-c-dev
  libfuse3-dev fuse3
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
