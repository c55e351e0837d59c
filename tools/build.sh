#!/usr/bin/env bash
# Builds the chart and alert tools into $BIN: helm (tools/helm) and promtool (tools/promtool), each from its own
# nested module so that their dependency trees never touch agentgate's go.mod, and each skipped when its stamp
# (go.mod + go.sum hash, go version, build flags) is unchanged. Versions: the `tool` lines of each go.mod.
set -euo pipefail
cd "$(dirname "$0")"
BIN=${BIN:-$PWD/../bin}
mkdir -p "$BIN"

# build NAME PACKAGE TAGS LDFLAGS: one tool from the module in ./NAME.
build() {
  local name=$1 pkg=$2 tags=$3 ldflags=$4
  local stamp
  stamp="$(sha256sum "$name/go.mod" "$name/go.sum" | sha256sum | cut -c1-16)-$(go env GOVERSION)-$tags"
  if [[ -f $BIN/.stamp-$name && $(cat "$BIN/.stamp-$name") == "$stamp" && -x $BIN/$name ]]; then
    echo "$name up to date ($stamp)"; return
  fi
  echo "building $name ($stamp)"
  # Into a temporary file first: a build interrupted half-way never leaves a binary that the stamp vouches for.
  (cd "$name" && go build -trimpath -tags "$tags" -ldflags "-s -w $ldflags" -o "$BIN/.$name.tmp" "$pkg")
  mv "$BIN/.$name.tmp" "$BIN/$name"
  echo "$stamp" > "$BIN/.stamp-$name"
}

version_of() { (cd "$1" && go list -m -f '{{.Version}}' "$2"); }

helm_version=$(version_of helm helm.sh/helm/v4)
build helm helm.sh/helm/v4/cmd/helm "" \
  "-X helm.sh/helm/v4/internal/version.version=$helm_version"

# remove_all_sd: promtool tests rules; the cloud service-discovery plugins (most of Prometheus's dependency
# tree) are not needed for that.
prom_version=$(version_of promtool github.com/prometheus/prometheus)
build promtool github.com/prometheus/prometheus/cmd/promtool remove_all_sd \
  "-X github.com/prometheus/common/version.Version=$prom_version"
