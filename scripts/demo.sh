#!/usr/bin/env bash
# The main job: installs what is missing, builds, and shows the eBPF engine
# running a BPF-KV node search (the step a B+-tree lookup repeats per level),
# checked against the native C version, then the engine benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/build.sh release
exec python3 scripts/demo.py build
