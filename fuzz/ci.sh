#!/usr/bin/env bash
# The bounded fuzzing run of the test suite: builds every cargo-fuzz target and runs each for
# a few seconds from its kept seeds (fuzz/seeds/<target>, which include every input that once
# found a bug), failing on any crash, panic or failed property.
#   fuzz/ci.sh [seconds_per_target]   (default 20)
# The long campaigns that look for saturation are fuzz/campaign.sh; see docs/testing.md.
set -euo pipefail
secs=${1:-20}
cd "$(dirname "$0")"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install --locked --quiet cargo-fuzz --version 0.13.2
fi
export RUSTC_BOOTSTRAP=1 # cargo-fuzz's sanitizer flags on the stable toolchain
targets=$(cargo fuzz list)
work=$(mktemp -d /tmp/ptp-events-fuzz-ci.XXXXXX)
failed=()
# The logs stay when something failed.
trap '[ "${#failed[@]}" -gt 0 ] || rm -rf "$work"' EXIT
cargo fuzz build -O >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
for t in $targets; do
    mkdir -p "$work/$t" artifacts
    seeds=seeds/$t
    [ "$t" = engine ] && seeds=seeds/line_parser # the engine reads lines, as the parser does
    if [ -d "$seeds" ]; then cp "$seeds"/* "$work/$t/"; fi
    dict=()
    if [ -f "dicts/$t.dict" ]; then dict=("-dict=dicts/$t.dict"); fi
    if cargo fuzz run -O "$t" "$work/$t" -- -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="artifacts/ci-" "${dict[@]}" >"$work/$t.log" 2>&1; then
        echo "fuzz $t: ok, $(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/$t.log" \
            | awk '{print $2}') executions in ${secs} s, $(grep -o 'cov: [0-9]*' "$work/$t.log" \
            | tail -n 1)"
    else
        failed+=("$t")
        echo "fuzz $t: FAILED (log: $work/$t.log)" >&2
        { grep -E -A12 'panicked at|ERROR: libFuzzer|deadly signal' "$work/$t.log" ||
            tail -n 40 "$work/$t.log"; } | head -n 40 >&2 || true
        ls artifacts/ci-* >&2 2>/dev/null || true
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: failures in ${failed[*]}" >&2
    exit 1
fi
