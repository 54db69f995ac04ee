#!/usr/bin/env bash
# Smoke test of a built ptp-events image, run from the image's own filesystem:
#   deploy/smoke-image.sh [image]          (default localhost/ptp-events:0.1.0)
# Build the image first (from the repository root):
#   podman build -f deploy/Containerfile --ignorefile deploy/Containerfile.dockerignore \
#       -t localhost/ptp-events:0.1.0 .
# Needs root, buildah (it comes with podman), iproute2, curl and python3 on the host. The image runs with buildah's chroot isolation
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
ctr=""
ns=""
pids=()
cleanup() {
    # Each background run is its own process group (setsid): the group takes the process in the
    # chroot with it. The daemon's children (ptp4l) have groups of their own: whatever is
    # still in the network namespace is killed before the namespace goes.
    for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "$ns" ]; then
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    fi
    if [ -n "$ctr" ]; then
        buildah umount "$ctr" >/dev/null 2>&1 || true
        buildah rm "$ctr" >/dev/null 2>&1 || true
    fi
    [ -n "${SMOKE_KEEP_LOGS:-}" ] || rm -rf "$logs"
}
trap cleanup EXIT
ctr=$(buildah from --pull-never "$image")
mnt=$(buildah mount "$ctr")
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
# The same profile the daemon runs below: ptp4l as a grandmaster (masterOnly: it adjusts no
# clock) with software timestamps on ens1f0.
printf '%s' '[{"name":"smoke","interface":"ens1f0","ptp4lOpts":"-2 -S","ptp4lConf":"[global]\nmasterOnly 1\n","ptpClockThreshold":{"holdOverTimeout":1,"maxOffsetThreshold":100,"minOffsetThreshold":-100}}]' \
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

received() { # $1: state; the consumer's log has a lock-state event with it
    local events
    events=$(grep "received event" "$logs/consumer.log" || true)
    grep "ens1f0/master" <<<"$events" | grep -q "\"$1\""
}
for state_name in LOCKED HOLDOVER FREERUN; do
    for _ in $(seq 50); do
        received "$state_name" && break
        sleep 0.2
    done
    received "$state_name" || fail "the consumer did not receive a $state_name lock-state event"
    echo "smoke: the consumer received $state_name for /cluster/node/smoke-node/ens1f0/master"
done
current=$(curl -fsS "$base/cluster/node/smoke-node/sync/ptp-status/lock-state/CurrentState")
grep -q '"FREERUN"' <<<"$current" || fail "CurrentState is not FREERUN: $current"
echo "smoke: CurrentState lock-state FREERUN"
curl -fsS "http://127.0.0.1:$metrics/metrics" >"$logs/metrics.txt" || fail "no metrics"
grep -q '^openshift_ptp_clock_state{' "$logs/metrics.txt" || fail "no openshift_ptp_clock_state"
if command -v promtool >/dev/null 2>&1; then
    # Exit 3 is lint findings only; the only ones allowed are the Go names kept on purpose
    # (`_ns` units, a gauge named `_count`; docs: DECISIONS.md).
    rc=0
    report=$(promtool check metrics <"$logs/metrics.txt" 2>&1) || rc=$?
    unexpected=$(grep -v -E '^openshift_ptp_\S+ (metric names should not contain abbreviated units|.*should not have "_count" suffix)' <<<"$report" | grep -v '^\s*$' || true)
    { [ "$rc" = 0 ] || [ "$rc" = 3 ]; } && [ -z "$unexpected" ] ||
        fail "promtool check metrics (exit $rc): $report"
    echo "smoke: metrics pass promtool check metrics"
fi
# The daemon role, as root (the DaemonSet's daemon container runs as uid 0): in a network
# namespace with a veth pair named like a NIC, `ptp-events daemon` renders the profile, runs the
# image's ptp4l on ens1f0 and streams its lines to the producer's socket.
ns=pe-smoke-$$
ip netns add "$ns"
ip -n "$ns" link add ens1f0 type veth peer name ens1f1
ip -n "$ns" link set ens1f0 up
ip -n "$ns" link set ens1f1 up
setsid ip netns exec "$ns" buildah run --isolation chroot --network host --user 0:0 \
    --cap-add CAP_NET_RAW,CAP_NET_ADMIN,CAP_SYS_TIME "$ctr" -- \
    ptp-events daemon --node-name smoke-node --profile-dir "$state/profiles" \
    --run-dir "$state/run" --socket "$state/events.sock" --http-addr off --print-lines >"$logs/daemon.log" 2>&1 &
pids+=($!)
for _ in $(seq 150); do
    m=$(curl -fsS "http://127.0.0.1:$metrics/metrics" 2>/dev/null || true)
    grep -q '^openshift_ptp_interface_role{iface="ens1f0",node="smoke-node",process="ptp4l"} 2' \
        <<<"$m" && break
    sleep 0.2
done
m=$(curl -fsS "http://127.0.0.1:$metrics/metrics")
grep -q '^openshift_ptp_process_status{config="ptp4l.0.config",node="smoke-node",process="ptp4l"} 1' <<<"$m" ||
    fail "the producer does not see the daemon's ptp4l up: $(grep -E 'interface_role|process_status' <<<"$m")"
grep -q '^openshift_ptp_interface_role{iface="ens1f0",node="smoke-node",process="ptp4l"} 2' <<<"$m" ||
    fail "the daemon's ptp4l did not take the MASTER role on ens1f0: $(grep -E 'interface_role|process_status' <<<"$m")"
grep -q 'masterOnly 1' "$mnt$state/run/ptp4l.0.config" || fail "the daemon did not render the profile"
echo "smoke: the daemon ran the image's ptp4l (up, port MASTER on ens1f0), seen by the producer"

echo "smoke: $image passed"
