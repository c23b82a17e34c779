#!/usr/bin/env bash
# The one test command: installs what is missing, builds the release and the
# ASan+UBSan builds, and runs every test against both.  Ends with a line
# "N passed, N failed"; exits non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/build.sh release asan
exec tests/run.sh build build-asan
