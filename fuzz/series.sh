#!/usr/bin/env bash
# Runs a fuzz target as several successive fresh processes and says, after each, where its new
# coverage is, by crate. One libFuzzer process going quiet proves little (a fresh process on the
# same corpus can still find new edges), so saturation is judged on fresh processes.
#   fuzz/series.sh <target> [runs] [seconds]
# Each run is `campaign.sh <target> <seconds> <seconds>` (default 5 runs of 600 s) on the kept
# corpus. Before each run the corpus is snapshotted with hard links (so that inputs libFuzzer
# reduces away stay in the snapshot), and after it `coverage_split.py <target> <snapshot>` writes
# the run's gains to fuzz/logs/<target>.series-<start>-run<N>.txt. A summary line per run gives
# the edges gained in this workspace's crates and in all.
set -uo pipefail
target=$1
runs=${2:-5}
secs=${3:-600}
cd "$(dirname "$0")"
mkdir -p logs
stamp=$(date -u +%Y%m%dT%H%M%S)
snap=$(mktemp -d)
trap 'rm -rf "$snap"' EXIT
for i in $(seq 1 "$runs"); do
    rm -rf "$snap/corpus"
    mkdir -p "corpus/$target"
    cp -al "corpus/$target" "$snap/corpus"
    summary=$(./campaign.sh "$target" "$secs" "$secs")
    cp "logs/$target.log" "logs/$target.series-$stamp-run$i.log"
    out="logs/$target.series-$stamp-run$i.txt"
    python3 coverage_split.py "$target" "$snap/corpus" >"$out" 2>&1
    ours=$(awk '$1 ~ /^workspace:/ {s += $4} END {print s + 0}' "$out")
    all=$(awk '$1 == "total" {print $4}' "$out")
    echo "run $i/$runs: $summary"
    echo "run $i/$runs: new edges: ${ours} in this workspace's crates, ${all:-?} in all ($out)"
done
