#!/usr/bin/env bash
# Renders the mixin's dashboards and rules into the repository, or into the directory given
# (the drift test renders into a temporary one and compares). Needs jsonnet (Debian's package).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$(dirname "$here")}
# jsonnet -m does not make directories.
for dir in dashboards deploy/kubernetes/dashboards deploy/helm/powerbi-exporter/dashboards \
  deploy/prometheus/rules deploy/helm/powerbi-exporter/rules deploy/kubernetes; do
  mkdir -p "$out/$dir"
done
jsonnet -J "$here" -m "$out" "$here/render-dashboards.jsonnet" >/dev/null
jsonnet -J "$here" -S -m "$out" "$here/render-rules.jsonnet" >/dev/null
