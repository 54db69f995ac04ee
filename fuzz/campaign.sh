#!/usr/bin/env bash
# Runs one cargo-fuzz target until it stops finding new coverage.
#   fuzz/campaign.sh <target> [quiet_seconds] [max_seconds]
# The run ends when no new input ("NEW" line) has been found for quiet_seconds (default 600)
# after at least quiet_seconds of running, or at max_seconds (default 1800). The corpus is
# fuzz/corpus/<target>, seeded from fuzz/seeds/<target>; the log is fuzz/logs/<target>.log and a
# one-line summary is printed at the end.
set -euo pipefail
target=$1
quiet=${2:-600}
max=${3:-1800}
cd "$(dirname "$0")"
mkdir -p "corpus/$target" logs
if [ -d "seeds/$target" ]; then cp -n "seeds/$target"/* "corpus/$target/" 2>/dev/null || true; fi
log="logs/$target.log"
RUSTC_BOOTSTRAP=1 cargo fuzz build -O "$target" >/dev/null 2>&1
start=$(date +%s)
RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$target" "corpus/$target" -- \
    -max_total_time="$max" -print_final_stats=1 >"$log" 2>&1 &
pid=$!
last_new=$start
reason="max_seconds reached"
while kill -0 "$pid" 2>/dev/null; do
    sleep 10
    now=$(date +%s)
    # The log's modification time moves with every line; NEW lines are what count.
    n=$(grep -c ' NEW ' "$log" || true)
    if [ "${n:-0}" != "${prev_n:-}" ]; then last_new=$now; prev_n=$n; fi
    if [ $((now - start)) -ge "$quiet" ] && [ $((now - last_new)) -ge "$quiet" ]; then
        reason="no new input for ${quiet}s"
        pkill -INT -P "$pid" 2>/dev/null || true
        kill -INT "$pid" 2>/dev/null || true
        break
    fi
done
wait "$pid" 2>/dev/null || status=$?
status=${status:-0}
end=$(date +%s)
execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' | tail -1)
[ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
last=$(grep ' NEW ' "$log" | tail -1 | grep -o '^#[0-9]*' | tr -d '#')
crash=$(grep -c -E 'deadly signal|panicked|ERROR: libFuzzer' "$log" || true)
echo "$target: ran $((end - start)) s, ${execs:-?} executions, coverage ${cov:-?} edges," \
    "last new input at execution ${last:-none} (about $((last_new - start)) s in), stop: $reason," \
    "crashes: ${crash:-0}, exit $status"
