#!/usr/bin/env bash
# Makes the node-to-node TLS material of the Kubernetes cluster with the project's own
# `gigaledger cert`: a cluster CA in deploy/k8s/certs-ca/ (keep ca.key there or offline: it is
# never put into the cluster) and, in deploy/k8s/certs/, what the Secret gigaledger-tls is made
# of (kustomization.yaml's secretGenerator): ca.crt, gossip.key and gigaledger-N.crt/.key for
# each pod of the StatefulSet.
#
#   bash deploy/k8s/make-certs.sh [NAMESPACE [REPLICAS]]    # defaults: default, 3
#   kubectl apply -k deploy/k8s
#
# Without kustomize, the same Secret by hand:
#   kubectl create secret generic gigaledger-tls --from-file=deploy/k8s/certs/
#
# Needs the gigaledger binary: GIGALEDGER=/path/to/gigaledger, else `gigaledger` on PATH, else
# `go run ./cmd/gigaledger` from the repository. Existing files are kept (--keep-existing);
# delete certs/ (and certs-ca/ for a new CA) to make new ones, then roll the pods.
set -euo pipefail

NAMESPACE=${1:-default}
REPLICAS=${2:-3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CA_DIR=$HERE/certs-ca
OUT=$HERE/certs

if [[ -n ${GIGALEDGER:-} ]]; then
  gl() { "$GIGALEDGER" "$@"; }
elif command -v gigaledger >/dev/null; then
  gl() { gigaledger "$@"; }
else
  gl() { (cd "$ROOT" && go run ./cmd/gigaledger "$@"); }
fi

umask 077
mkdir -p "$CA_DIR" "$OUT"
gl cert create-ca --dir "$CA_DIR" --keep-existing
for ((i = 0; i < REPLICAS; i++)); do
  id=gigaledger-$i
  # Pods reach each other as <pod>.gigaledger (the headless Service); the node ID is the pod
  # name (--node-id=$(POD_NAME)).
  gl cert create-node --dir "$CA_DIR" --out "$CA_DIR/$id" --node-id "$id" --keep-existing \
    --hosts "$id.gigaledger,$id.gigaledger.$NAMESPACE.svc,$id.gigaledger.$NAMESPACE.svc.cluster.local,localhost,127.0.0.1"
  cp "$CA_DIR/$id/node.crt" "$OUT/$id.crt"
  cp "$CA_DIR/$id/node.key" "$OUT/$id.key"
done
cp "$CA_DIR/ca.crt" "$CA_DIR/gossip.key" "$OUT/"
echo "wrote $OUT (the Secret gigaledger-tls); the CA key stays in $CA_DIR"
