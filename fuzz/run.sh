#!/usr/bin/env bash
# Runs every fuzz target for SECONDS seconds, after replaying the seed corpora and the
# regressions. A failure prints the shrunk input and the command that replays it.
#
#   fuzz/run.sh SECONDS [FILTER]     e.g. fuzz/run.sh 600, or fuzz/run.sh 60 policy
#   FUZZ_JOBS=2 fuzz/run.sh 30       two targets at a time (default: one)
#   FUZZ_DEBUG=1 fuzz/run.sh 30      the debug build `cargo test` already made (CI), not release
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:?usage: fuzz/run.sh SECONDS [FILTER]}"
filter="${2:-}"
build=(--release)
if [[ "${FUZZ_DEBUG:-0}" == 1 ]]; then
  build=()
fi

FUZZ_SECONDS="$seconds" cargo test "${build[@]}" --all-features --test fuzz -- \
  --test-threads="${FUZZ_JOBS:-1}" --nocapture ${filter:+"$filter"}
