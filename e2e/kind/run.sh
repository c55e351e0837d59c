#!/usr/bin/env bash
# make e2e-kind: the path for machines with Docker. Creates a kind cluster, builds and loads the image,
# installs manifests/overlays/kind, waits for the rollout, and runs the same e2e suite against it.
set -euo pipefail
cluster=${1:-agentgate}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
KIND="go run sigs.k8s.io/kind@v0.33.0"
KUBECTL=${KUBECTL:-$root/bin/kubectl}
command -v docker >/dev/null || { echo "e2e-kind needs Docker; without it, make test runs the suite against a local kube-apiserver" >&2; exit 2; }
[ -x "$KUBECTL" ] || make controlplane

kubeconfig="$root/bin/kind-$cluster.kubeconfig"
if ! $KIND get clusters | grep -qx "$cluster"; then
  $KIND create cluster --name "$cluster" --kubeconfig "$kubeconfig" --wait 120s
else
  $KIND get kubeconfig --name "$cluster" > "$kubeconfig"
fi
export KUBECONFIG="$kubeconfig"

docker build -t agentgate:dev .
$KIND load docker-image agentgate:dev --name "$cluster"

$KUBECTL apply -k manifests/overlays/kind
$KUBECTL -n agentgate-system rollout status deployment/agentgate --timeout=180s

# The suite sees KUBECONFIG and AGENTGATE_E2E_EXTERNAL=1: it then uses the installed webhook instead of starting
# its own control plane and server.
AGENTGATE_E2E_EXTERNAL=1 go test -count=1 -v ./e2e/ "$@"
