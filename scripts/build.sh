#!/usr/bin/env bash
# Configures and builds RosenBridge.  Usage: scripts/build.sh [release|asan|tsan|fuzz]...
#   release (default): build/        -O2 -g, -Werror
#   asan:              build-asan/   ASan + UBSan (what CI also runs)
#   tsan:              build-tsan/   ThreadSanitizer (the threaded stress tests:
#                      tests/run-tsan.sh)
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
    tsan) dir=build-tsan; opts=(-Db_sanitize=thread) ;;
    fuzz) dir=build-fuzz
      opts=(-Dfuzz=true -Db_sanitize=address,undefined -Dc_args=-fsanitize=fuzzer-no-link) ;;
    *) echo "build: unknown build kind '$kind' (release|asan|tsan|fuzz)" >&2; exit 2 ;;
  esac
  if [ ! -f "$dir/build.ninja" ]; then
    # clang: gcc's ThreadSanitizer refuses memory fences (the virtqueue
    # code needs them), clang's models them.
    if [ "$kind" = fuzz ] || [ "$kind" = tsan ]; then
      CC=clang-19 meson setup "$dir" "${opts[@]}" >/dev/null
    else
      meson setup "$dir" "${opts[@]}" >/dev/null
    fi
  fi
  ninja -C "$dir" -j"$(nproc)" >/dev/null
  echo "build: $dir ok"
done
