#!/usr/bin/env bash
# Hunts flaky tests: runs the whole workspace suite N times, alternating the conditions that
# shake out races on a small machine: a competing CPU load (one busy loop per core), and
# --test-threads 1, the default and 8. Every failing test is listed with the run it failed in;
# the logs stay in the printed directory.
#   scripts/flaky-hunt.sh [runs]      (default 6; needs what `bash .ci/run` installs)
set -uo pipefail
runs=${1:-6}
cd "$(dirname "$0")/.."
# What .ci/run installs: the schemathesis CLI of crates/proxy/tests/openapi.rs.
if [ -z "${SCHEMATHESIS:-}" ] && [ -x /tmp/ptp-events-ci-venv/bin/schemathesis ]; then
    export SCHEMATHESIS=/tmp/ptp-events-ci-venv/bin/schemathesis
fi
log=$(mktemp -d /tmp/flaky-hunt.XXXXXX)
cargo test --workspace --no-run -q >"$log/build.log" 2>&1 || { cat "$log/build.log"; exit 1; }
cores=$(nproc)
fails=0
for i in $(seq 1 "$runs"); do
    case $((i % 3)) in
        1) threads=""; load=1 ;;
        2) threads="--test-threads=1"; load=0 ;;
        0) threads="--test-threads=8"; load=1 ;;
    esac
    pids=()
    if [ "$load" = 1 ]; then
        for _ in $(seq 1 "$cores"); do (while :; do :; done) & pids+=($!); done
    fi
    start=$(date +%s)
    cargo test --workspace --no-fail-fast -- $threads >"$log/run$i.log" 2>&1
    rc=$?
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait "${pids[@]}" 2>/dev/null
    failed=$(grep -E '^test .* \.\.\. FAILED$' "$log/run$i.log" | sed 's/^test //; s/ \.\.\. FAILED$//' | sort -u)
    echo "run $i: load=$load threads=${threads:-default} exit=$rc $(( $(date +%s) - start )) s${failed:+ FAILED: $(echo $failed)}"
    [ "$rc" = 0 ] || fails=$((fails + 1))
done
echo "$fails of $runs runs failed; logs in $log"
[ "$fails" = 0 ]
