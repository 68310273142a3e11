#!/usr/bin/env bash
# Offline checks of everything in deploy/, as an SRE team's CI would run
# them before anything reaches a cluster:
#   1. `kubectl kustomize` renders every overlay;
#   2. every rendered object validates against Kubernetes $K8S_VERSION with
#      kubernetes-validate (strict), custom resources against
#      deploy/k8s/schemas/;
#   3. checkov passes on the rendered manifests (skips are annotated, with
#      reasons, on the objects themselves);
#   4. promtool checks and unit-tests the alert rules, and
#      deploy/k8s/monitoring's PrometheusRule matches alerts.yaml.
# Usage: deploy/check.sh [rules]   (`rules` regenerates prometheusrule.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION=1.32.0
KUBERNETES_VALIDATE_VERSION=1.37.0
CHECKOV_VERSION=3.3.30
OVERLAYS=(dev prod prod-hpa)
WORK=target/deploy-check
VENV=$WORK/venv
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
MON=deploy/monitoring

python_env() {
  local have
  have=$("$VENV/bin/pip" freeze 2>/dev/null || true)
  if ! grep -qx "checkov==$CHECKOV_VERSION" <<<"$have" \
     || ! grep -qx "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" <<<"$have"; then
    echo "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION and checkov $CHECKOV_VERSION into $VENV"
    python3 -m venv "$VENV" 2>/dev/null || { $SUDO apt-get update -qq; $SUDO apt-get install -y -qq python3-venv; rm -rf "$VENV"; python3 -m venv "$VENV"; }
    "$VENV/bin/pip" install -q --disable-pip-version-check \
      "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "checkov==$CHECKOV_VERSION"
  fi
}

tools() {
  command -v kubectl >/dev/null || { echo "installing kubectl from apt"; $SUDO apt-get update -qq; $SUDO apt-get install -y -qq kubectl; }
  command -v promtool >/dev/null || { echo "installing prometheus (promtool) from apt"; $SUDO apt-get update -qq; $SUDO apt-get install -y -qq prometheus; }
  command -v python3 >/dev/null || { $SUDO apt-get update -qq; $SUDO apt-get install -y -qq python3 python3-venv; }
  python_env
}

# alerts.yaml wrapped as a PrometheusRule, on standard output.
prometheus_rule() {
  "$VENV/bin/python" - "$MON/alerts.yaml" <<'PY'
import sys, yaml
def text(dumper, data):
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)
yaml.add_representer(str, text, Dumper=yaml.SafeDumper)
rules = yaml.safe_load(open(sys.argv[1]))
doc = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "PrometheusRule",
    "metadata": {"name": "crawlq", "labels": {"app.kubernetes.io/name": "crawlq"}},
    "spec": rules,
}
print("# Generated from alerts.yaml by `make deploy-rules`; do not edit.")
print(yaml.safe_dump(doc, sort_keys=False, width=1000), end="")
PY
}

if [ "${1:-}" = rules ]; then
  python_env
  prometheus_rule > "$MON/prometheusrule.yaml"
  echo "wrote $MON/prometheusrule.yaml"
  exit 0
fi

tools
mkdir -p "$WORK"

echo "== promtool"
promtool check rules "$MON/alerts.yaml"
promtool test rules "$MON/alerts_test.yaml"
if ! diff -u "$MON/prometheusrule.yaml" <(prometheus_rule); then
  echo "FAIL: $MON/prometheusrule.yaml is stale; run make deploy-rules" >&2
  exit 1
fi
"$VENV/bin/python" -c 'import json,sys; json.load(open(sys.argv[1]))' "$MON/grafana-dashboard.json"

echo "== kubectl kustomize"
for o in "${OVERLAYS[@]}"; do
  kubectl kustomize "deploy/k8s/overlays/$o" > "$WORK/$o.yaml"
  echo "$o: $(grep -c '^kind:' "$WORK/$o.yaml") objects"
done

echo "== kubernetes-validate (Kubernetes $K8S_VERSION, strict)"
# Install the custom-resource schemas where kubernetes-validate looks them
# up: {kind}-{group}-{version}.json in the pinned version's folder.
schemas=$("$VENV/bin/python" -c 'import kubernetes_validate, os; print(os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema"))')
minor=${K8S_VERSION%.*}
for dir in "$schemas/v$minor.0-local" "$schemas/v$minor.0-local-strict"; do
  for f in deploy/k8s/schemas/*.yaml; do
    "$VENV/bin/python" -c 'import json,sys,yaml; json.dump(yaml.safe_load(open(sys.argv[1])), open(sys.argv[2],"w"))' \
      "$f" "$dir/$(basename "$f" .yaml).json"
  done
done
out=$("$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" deploy/k8s/namespace.yaml 2>&1) || { echo "$out"; exit 1; }
echo "namespace.yaml: valid"
for o in "${OVERLAYS[@]}"; do
  out=$("$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$WORK/$o.yaml" 2>&1) || { echo "$out"; exit 1; }
  # A kind without a schema is only a warning to kubernetes-validate; here
  # it is a failure, since it would go unchecked.
  if [ -n "$out" ]; then echo "$out"; exit 1; fi
  echo "$o: every object valid"
done

echo "== checkov"
for o in "${OVERLAYS[@]}"; do
  "$VENV/bin/checkov" --skip-download --quiet --compact --framework kubernetes -f "$WORK/$o.yaml" --output cli
done
echo "deploy-check: all passed"
