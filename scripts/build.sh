#!/usr/bin/env bash
# Configures and builds RosenBridge.  Usage: scripts/build.sh [release|asan]...
#   release (default): build/        -O2 -g, -Werror
#   asan:              build-asan/   ASan + UBSan (what CI also runs)
set -euo pipefail
cd "$(dirname "$0")/.."

kinds=("$@")
[ ${#kinds[@]} -eq 0 ] && kinds=(release)
for kind in "${kinds[@]}"; do
  case "$kind" in
    release) dir=build; opts=() ;;
    asan) dir=build-asan; opts=(-Db_sanitize=address,undefined) ;;
    *) echo "build: unknown build kind '$kind' (release|asan)" >&2; exit 2 ;;
  esac
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "${opts[@]}" >/dev/null
  fi
  ninja -C "$dir" -j"$(nproc)" >/dev/null
  echo "build: $dir ok"
done
