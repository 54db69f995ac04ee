#!/usr/bin/env bash
# Writes, on stdout, the documented per-node Services: for each PTP node, a Service
# `ptp-event-publisher-service-<short node name>` (port 9043) without a selector, and an
# EndpointSlice pointing it at that node's IP, where its producer listens (host network).
# A consumer on any node then reaches exactly that node's producer as
#   ptp-event-publisher-service-<node>.openshift-ptp.svc.cluster.local:9043
#
# Usage:
#   per-node-services.sh NODE=IP [NODE=IP ...]            # explicit list
#   per-node-services.sh --from-cluster [LABEL_SELECTOR]  # nodes from `kubectl get nodes`
#                                   (default selector: node-role.kubernetes.io/worker)
# Apply and prune (objects of nodes that are gone are deleted):
#   per-node-services.sh --from-cluster | kubectl apply -n openshift-ptp --prune \
#     -l app.kubernetes.io/managed-by=ptp-events-per-node-services -f -
# Re-run it when nodes join, leave or change IP (a cron job or your GitOps pipeline); nothing
# watches the nodes for you. Environment: NAMESPACE (openshift-ptp), PORT (9043).
set -euo pipefail

ns="${NAMESPACE:-openshift-ptp}"
port="${PORT:-9043}"
managed="ptp-events-per-node-services"

pairs=()
if [ "${1:-}" = "--from-cluster" ]; then
  selector="${2:-node-role.kubernetes.io/worker}"
  while IFS= read -r line; do
    [ -n "$line" ] && pairs+=("$line")
  done < <(kubectl get nodes -l "$selector" -o \
    jsonpath='{range .items[*]}{.metadata.name}={.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}')
elif [ "$#" -gt 0 ] && [ "${1:0:1}" != "-" ]; then
  pairs=("$@")
else
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
  exit 2
fi

for pair in "${pairs[@]}"; do
  node="${pair%%=*}"
  ip="${pair#*=}"
  ip="${ip%% *}" # dual-stack nodes list several InternalIPs: the first one
  if [ -z "$node" ] || [ -z "$ip" ] || [ "$node" = "$pair" ]; then
    echo "per-node-services: bad entry '$pair' (want NODE=IP)" >&2
    exit 1
  fi
  short="${node%%.*}" # the Go transport host uses the short node name
  name="ptp-event-publisher-service-${short}"
  if ! [[ "$name" =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ ]] || [ "${#name}" -gt 63 ]; then
    echo "per-node-services: '$name' is not a valid Service name (lowercase, at most 63 characters)" >&2
    exit 1
  fi
  case "$ip" in *:*) family=IPv6 ;; *) family=IPv4 ;; esac
  cat <<YAML
---
apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: ${ns}
  labels:
    app.kubernetes.io/managed-by: ${managed}
    app.kubernetes.io/part-of: ptp-events
spec:
  ports:
    - name: api
      port: ${port}
      targetPort: ${port}
      protocol: TCP
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}
  namespace: ${ns}
  labels:
    kubernetes.io/service-name: ${name}
    endpointslice.kubernetes.io/managed-by: ${managed}
    app.kubernetes.io/managed-by: ${managed}
    app.kubernetes.io/part-of: ptp-events
addressType: ${family}
endpoints:
  - addresses: ["${ip}"]
    nodeName: ${node}
    conditions:
      ready: true
ports:
  - name: api
    port: ${port}
    protocol: TCP
YAML
done
