#!/usr/bin/env bash
# Runs one cargo-fuzz target until its coverage stops growing.
#   fuzz/campaign.sh <target> [quiet_seconds] [max_seconds]
# The run ends when the edge coverage ("cov:") has not grown for quiet_seconds (default 600),
# or at max_seconds (default 1800). The corpus is fuzz/corpus/<target> (seeded from
# fuzz/seeds/<target>, kept between runs); fuzz/dicts/<target>.dict, when present, is given to
# libFuzzer as a dictionary; the log is fuzz/logs/<target>.log. A one-line summary
# is printed at the end: executions, coverage, when coverage last grew, when the last new corpus
# input ("NEW": new features, which also counts new hit counts of known edges) was found.
set -uo pipefail
target=$1
quiet=${2:-600}
max=${3:-1800}
cd "$(dirname "$0")"
mkdir -p "corpus/$target" logs
if [ -d "seeds/$target" ]; then cp -n "seeds/$target"/* "corpus/$target/" 2>/dev/null; fi
log="logs/$target.log"
RUSTC_BOOTSTRAP=1 cargo fuzz build -O "$target" >/dev/null 2>&1 || { echo "$target: build failed"; exit 1; }
start=$(date +%s)
dict=()
if [ -f "dicts/$target.dict" ]; then dict=("-dict=dicts/$target.dict"); fi
RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$target" "corpus/$target" -- \
    -max_total_time="$max" -print_final_stats=1 "${dict[@]}" >"$log" 2>&1 &
pid=$!
cov_of() { grep -o 'cov: [0-9]*' "$log" | tail -n 1 | awk '{print $2}'; }
new_of() { grep -c -P '\tNEW ' "$log"; }
last_cov=$start; last_new=$start; prev_cov=""; prev_new=""
reason="max_seconds reached"
while kill -0 "$pid" 2>/dev/null; do
    sleep 10
    now=$(date +%s)
    c=$(cov_of); n=$(new_of)
    if [ "$c" != "$prev_cov" ]; then last_cov=$now; prev_cov=$c; fi
    if [ "$n" != "$prev_new" ]; then last_new=$now; prev_new=$n; fi
    if [ $((now - last_cov)) -ge "$quiet" ]; then
        reason="coverage flat for ${quiet}s"
        pkill -INT -P "$pid" 2>/dev/null
        pkill -INT -f "release/$target " 2>/dev/null
        break
    fi
done
wait "$pid" 2>/dev/null
status=$?
end=$(date +%s)
execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -n 1 | awk '{print $2}')
crash=$(grep -c -E 'deadly signal|panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer' "$log")
echo "$target: ran $((end - start)) s, ${execs:-?} executions, coverage $(cov_of) edges," \
    "coverage last grew $((last_cov - start)) s in, last new input $((last_new - start)) s in," \
    "stop: $reason, crashes: $crash, exit $status"
