#!/usr/bin/env bash
# Smoke test of a built ptp-events image, run from the image's own filesystem:
#   deploy/smoke-image.sh [image]          (default localhost/ptp-events:0.1.0)
# Build the image first (from the repository root):
#   podman build -f deploy/Containerfile --ignorefile deploy/Containerfile.dockerignore \
#       -t localhost/ptp-events:0.1.0 .
# Needs buildah (it comes with podman) and root. The image runs with buildah's chroot isolation
# on the host network, which works where an OCI runtime cannot (no cgroups, no setrlimit); the
# checks only use loopback ports (SMOKE_API_PORT 19043, SMOKE_METRICS_PORT 19091,
# SMOKE_CONSUMER_PORT 19089).
#
# It checks: the image's user (65532) and store directory; linuxptp's ptp4l, phc2sys and ts2phc
# in the image; the producer (`ptp-events proxy`, reading a rendered ptp4l config and a profile
# as the sidecar does) and the reference consumer (`ptp-events consumer`) both running from the
# image; daemon lines written to the producer's socket become LOCKED, HOLDOVER and FREERUN
# events that the consumer receives, CurrentState answers, and the metrics are valid Prometheus
# text (`promtool check metrics` when promtool is installed).
set -euo pipefail
image=${1:-localhost/ptp-events:0.1.0}
api=${SMOKE_API_PORT:-19043}
metrics=${SMOKE_METRICS_PORT:-19091}
local=${SMOKE_CONSUMER_PORT:-19089}
base="http://127.0.0.1:$api/api/ocloudNotifications/v2"

fail() {
    echo "smoke: FAILED: $*" >&2
    for f in "$logs"/*.log; do
        echo "--- $f" >&2
        tail -n 20 "$f" >&2
    done
    exit 1
}

logs=$(mktemp -d /tmp/ptp-events-smoke.XXXXXX)
ctr=$(buildah from --pull-never "$image")
mnt=$(buildah mount "$ctr")
pids=()
cleanup() {
    # Each background run is its own process group (setsid): the group takes the process in the
    # chroot with it.
    for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    buildah umount "$ctr" >/dev/null 2>&1 || true
    buildah rm "$ctr" >/dev/null 2>&1 || true
    rm -rf "$logs"
}
trap cleanup EXIT
run() { buildah run --isolation chroot --network host "$ctr" -- "$@"; }

echo "smoke: $image: $(run ptp-events --version)"
[ "$(run id -u)" = 65532 ] || fail "the image does not run as user 65532"
for tool in ptp4l phc2sys ts2phc; do
    v=$(run "$tool" -v 2>&1) || fail "$tool is not in the image"
    echo "smoke: $tool $v"
done
[ "$(stat -c '%u %a' "$mnt/var/lib/ptp-events")" = "65532 700" ] ||
    fail "/var/lib/ptp-events is not owned by 65532 with mode 0700"

# What the Go daemon leaves for its sidecar: a rendered config and the node's profiles.
state=/var/lib/ptp-events
mkdir -p "$mnt$state/run" "$mnt$state/profiles"
printf '#profile: smoke\n[global]\nslaveOnly 1\nmessage_tag [ptp4l.0.config]\n[ens1f0]\n' \
    >"$mnt$state/run/ptp4l.0.config"
printf '%s' '[{"name":"smoke","interface":"ens1f0","ptp4lOpts":"-2 -s","ptpClockThreshold":{"holdOverTimeout":1,"maxOffsetThreshold":100,"minOffsetThreshold":-100}}]' \
    >"$mnt$state/profiles/smoke-node"
chown -R 65532:65532 "$mnt$state"

setsid buildah run --isolation chroot --network host "$ctr" -- \
    ptp-events proxy --node-name smoke-node --api-bind 127.0.0.1 --api-port "$api" \
    --metrics-addr "127.0.0.1:$metrics" --store-path "$state/store" \
    --socket "$state/events.sock" --ptp-config-dir "$state/run" \
    --profile-dir "$state/profiles" >"$logs/proxy.log" 2>&1 &
pids+=($!)
setsid buildah run --isolation chroot --network host "$ctr" -- \
    env NODE_NAME=smoke-node ptp-events consumer --local-api-addr "127.0.0.1:$local" \
    --http-event-publishers "127.0.0.1:$api" >"$logs/consumer.log" 2>&1 &
pids+=($!)

for _ in $(seq 100); do
    curl -fsS "$base/health" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "$base/health" >/dev/null || fail "the producer's health endpoint does not answer"
for _ in $(seq 100); do
    [ -S "$mnt$state/events.sock" ] && grep -q "ptp-status/lock-state" "$logs/consumer.log" && break
    sleep 0.2
done
[ -S "$mnt$state/events.sock" ] || fail "the producer's socket did not appear"

# The daemon's lines: port 1 becomes SLAVE, an offset in range (LOCKED), the port faults
# (HOLDOVER, then FREERUN after the profile's 1 s holdover).
python3 - "$mnt$state" <<'EOF'
import os, socket, sys, time
os.chdir(sys.argv[1])  # the full path is longer than a socket address may be
s = socket.socket(socket.AF_UNIX)
s.connect("events.sock")
s.sendall(b"ptp4l[100.0]: [ptp4l.0.config] port 1: UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED\n"
          b"ptp4l[100.1]: [ptp4l.0.config] master offset 7 s2 freq -1 path delay 500\n")
time.sleep(0.5)
s.sendall(b"ptp4l[101.0]: [ptp4l.0.config] port 1: SLAVE to FAULTY on FAULT_DETECTED (FT_UNSPECIFIED)\n")
time.sleep(0.2)
s.close()
EOF

for state_name in LOCKED HOLDOVER FREERUN; do
    for _ in $(seq 50); do
        grep "received event" "$logs/consumer.log" | grep "ens1f0/master" |
            grep -q "\"$state_name\"" && break
        sleep 0.2
    done
    grep "received event" "$logs/consumer.log" | grep "ens1f0/master" | grep -q "\"$state_name\"" ||
        fail "the consumer did not receive a $state_name lock-state event"
    echo "smoke: the consumer received $state_name for /cluster/node/smoke-node/ens1f0/master"
done
current=$(curl -fsS "$base/cluster/node/smoke-node/sync/ptp-status/lock-state/CurrentState")
grep -q '"FREERUN"' <<<"$current" || fail "CurrentState is not FREERUN: $current"
echo "smoke: CurrentState lock-state FREERUN"
curl -fsS "http://127.0.0.1:$metrics/metrics" >"$logs/metrics.txt" || fail "no metrics"
grep -q '^openshift_ptp_clock_state{' "$logs/metrics.txt" || fail "no openshift_ptp_clock_state"
if command -v promtool >/dev/null 2>&1; then
    promtool check metrics <"$logs/metrics.txt" >/dev/null 2>&1 ||
        fail "promtool: $(promtool check metrics <"$logs/metrics.txt" 2>&1 | head -5)"
    echo "smoke: metrics pass promtool check metrics"
fi
echo "smoke: $image passed"
