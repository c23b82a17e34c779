#!/usr/bin/env bash
# Configures and builds RosenBridge.  Usage: scripts/build.sh [release|asan|fuzz]...
#   release (default): build/        -O2 -g, -Werror
#   asan:              build-asan/   ASan + UBSan (what CI also runs)
#   fuzz:              build-fuzz/   clang-19, everything built with
#                      -fsanitize=fuzzer-no-link,address,undefined, plus the
#                      libFuzzer targets of tests/fuzz (docs/robustness.md)
set -euo pipefail
cd "$(dirname "$0")/.."

kinds=("$@")
[ ${#kinds[@]} -eq 0 ] && kinds=(release)
for kind in "${kinds[@]}"; do
  case "$kind" in
    release) dir=build; opts=() ;;
    asan) dir=build-asan; opts=(-Db_sanitize=address,undefined) ;;
    fuzz) dir=build-fuzz
      opts=(-Dfuzz=true -Db_sanitize=address,undefined -Dc_args=-fsanitize=fuzzer-no-link) ;;
    *) echo "build: unknown build kind '$kind' (release|asan|fuzz)" >&2; exit 2 ;;
  esac
  if [ ! -f "$dir/build.ninja" ]; then
    if [ "$kind" = fuzz ]; then
      CC=clang-19 meson setup "$dir" "${opts[@]}" >/dev/null
    else
      meson setup "$dir" "${opts[@]}" >/dev/null
    fi
  fi
  ninja -C "$dir" -j"$(nproc)" >/dev/null
  echo "build: $dir ok"
done
