#!/usr/bin/env bash
# Configures and builds RosenBridge.  Usage: scripts/build.sh [release|asan|tsan|fuzz]...
#   release (default): build/        -O2 -g, -Werror
#   asan:              build-asan/   ASan + UBSan, with lib/io's fault hooks
#                                    (-Dfault_hooks=true; what CI also runs)
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
    asan) dir=build-asan; opts=(-Db_sanitize=address,undefined -Dfault_hooks=true) ;;
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
  elif [ "$kind" = asan ] && ! python3 - "$dir" <<'PY'
import json, sys
opts = json.load(open(sys.argv[1] + "/meson-info/intro-buildoptions.json"))
sys.exit(0 if any(o["name"] == "fault_hooks" and o["value"] for o in opts) else 1)
PY
  then
    # A build-asan configured before the fault hooks existed gets them.
    meson setup --reconfigure "$dir" -Dfault_hooks=true >/dev/null
  fi
  ninja -C "$dir" -j"$(nproc)" >/dev/null
  echo "build: $dir ok"
done
