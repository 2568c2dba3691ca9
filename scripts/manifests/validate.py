"""Renders every kustomization of the repository and validates every object it yields.

- core kinds: strictly against the Kubernetes API schemas (kubernetes-validate, --strict:
  unknown fields are errors);
- Argo CD, Argo Rollouts and Prometheus-operator kinds: against their CRD schemas
  (@kubernetes-models, through crds.js);
- Strimzi kinds: against the JSON-schema subset in k8s/schemas/strimzi;
- Tekton: @ibm/tekton-lint over pipelines/.

An object of any other kind is an error: nothing passes unvalidated. Then each deliberately
broken example under k8s/tests/broken must be rejected by the validator it names, which proves
each validator can fail. Prints a summary and, with --json FILE, writes it as JSON.

Usage: python validate.py --root REPO --kubectl KUBECTL --node-modules DIR [--json FILE]
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.33.0"
CORE = {
    "v1",
    "apps/v1",
    "batch/v1",
    "policy/v1",
    "networking.k8s.io/v1",
    "rbac.authorization.k8s.io/v1",
    "autoscaling/v2",
    "apiextensions.k8s.io/v1",
}
CRD_GROUPS = ("argoproj.io/", "monitoring.coreos.com/")
STRIMZI = "kafka.strimzi.io/"
# Rivulet's own CRDs, validated against the schema of the committed (generated) CRD.
RIVULET_CRDS = {"rivulet.io/v1alpha1": {"Consumer": "k8s/base/consumer-autoscaler/crd.yaml"}}


def kustomizations(root):
    """Every folder with a kustomization.yaml that is a Kustomization (not a Component)."""
    for f in sorted(root.glob("**/kustomization.yaml")):
        rel = f.relative_to(root)
        if rel.parts[0] not in ("k8s", "argocd", "pipelines"):
            continue
        if yaml.safe_load(f.read_text()).get("kind", "Kustomization") == "Kustomization":
            yield f.parent


def render(kubectl, folder):
    out = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def validator_of(obj):
    api = obj.get("apiVersion", "")
    if api in CORE:
        return "kubernetes"
    if api.startswith(CRD_GROUPS):
        return "crd"
    if api.startswith(STRIMZI):
        return "strimzi"
    if api in RIVULET_CRDS:
        return "rivulet"
    if api.startswith(("tekton.dev/", "triggers.tekton.dev/")):
        return "tekton"
    return None


def check_kubernetes(obj):
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        return None
    except kubernetes_validate.ValidationError as e:
        path = "/".join(str(p) for p in e.path)
        return f"{path}: {e.message}"
    except Exception as e:  # unknown kind or version: an error too
        return str(e)


def check_strimzi(obj, schemas):
    schema = schemas.get(obj.get("kind"))
    if schema is None:
        return f"no Strimzi schema for kind {obj.get('kind')}"
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(obj), key=lambda e: list(e.path)
    )
    if not errors:
        return None
    return "; ".join(f"{'/'.join(str(p) for p in e.path)}: {e.message}" for e in errors[:3])


def check_rivulet(obj, root):
    path = RIVULET_CRDS[obj["apiVersion"]].get(obj.get("kind"))
    if path is None:
        return f"no Rivulet CRD for kind {obj.get('kind')}"
    crd = json.loads((root / path).read_text())
    version = obj["apiVersion"].split("/")[1]
    schema = next(v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"] if v["name"] == version)
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(obj), key=lambda e: list(e.path)
    )
    if not errors:
        return None
    return "; ".join(f"{'/'.join(str(p) for p in e.path)}: {e.message}" for e in errors[:3])


def check_crds(objs, node_modules, here):
    if not objs:
        return []
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(objs, f)
    out = subprocess.run(
        ["node", str(here / "crds.js"), node_modules, f.name], capture_output=True, text=True
    )
    pathlib.Path(f.name).unlink()
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    results = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    return [None if r["ok"] else r["error"] for r in results]


def tekton_lint(node_modules, files):
    out = subprocess.run(
        [f"{node_modules}/.bin/tekton-lint", "--color", "false", "--format", "json", *map(str, files)],
        capture_output=True,
        text=True,
    )
    try:
        problems = json.loads(out.stdout or "[]")
    except json.JSONDecodeError:
        return [f"tekton-lint: {out.stdout.strip()} {out.stderr.strip()}"]
    errors = [
        f"{p.get('path', '?')}:{p.get('loc', {}).get('startLine', '?')}: {p.get('message')}"
        for p in problems
        if p.get("level") == "error"
    ]
    if out.returncode != 0 and not errors:
        errors.append(f"tekton-lint exited {out.returncode}: {out.stderr.strip()}")
    return errors


def validate(objs, schemas, node_modules, here):
    """[(object, validator, error or None)] for a list of objects."""
    results = []
    crd_objs = []
    for obj in objs:
        v = validator_of(obj)
        if v == "kubernetes":
            results.append((obj, v, check_kubernetes(obj)))
        elif v == "strimzi":
            results.append((obj, v, check_strimzi(obj, schemas)))
        elif v == "rivulet":
            results.append((obj, v, check_rivulet(obj, here.parent.parent)))
        elif v == "crd":
            crd_objs.append(obj)
        elif v == "tekton":
            results.append((obj, v, None))  # linted as files, see tekton_lint
        else:
            results.append((obj, "none", f"no validator for {obj.get('apiVersion')} {obj.get('kind')}"))
    for obj, error in zip(crd_objs, check_crds(crd_objs, node_modules, here)):
        results.append((obj, "crd", error))
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--kubectl", required=True)
    ap.add_argument("--node-modules", required=True)
    ap.add_argument("--json")
    args = ap.parse_args()
    root = pathlib.Path(args.root).resolve()
    here = pathlib.Path(__file__).resolve().parent
    schemas = {
        p.name.split(".")[0]: json.loads(p.read_text())
        for p in (root / "k8s/schemas/strimzi").glob("*.schema.json")
    }
    summary = {"rendered": [], "objects": {}, "failures": [], "broken": []}

    # 1. Every kustomization renders, and every object validates.
    for folder in kustomizations(root):
        name = str(folder.relative_to(root))
        try:
            objs = render(args.kubectl, folder)
        except RuntimeError as e:
            summary["failures"].append({"where": name, "error": f"kustomize: {e}"})
            continue
        summary["rendered"].append({"kustomization": name, "objects": len(objs)})
        for obj, v, error in validate(objs, schemas, args.node_modules, here):
            summary["objects"][v] = summary["objects"].get(v, 0) + 1
            if error:
                what = f"{name}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
                summary["failures"].append({"where": what, "validator": v, "error": error})
    tekton_files = sorted((root / "pipelines").glob("**/*.yaml"))
    tekton_files = [f for f in tekton_files if f.name != "kustomization.yaml"]
    for error in tekton_lint(args.node_modules, tekton_files):
        summary["failures"].append({"where": "pipelines", "validator": "tekton", "error": error})

    # 2. Each broken example is rejected by the validator its name starts with.
    for f in sorted((root / "k8s/tests/broken").glob("*.yaml")):
        expected = f.name.split("-")[0]
        if expected == "tekton":
            errors = tekton_lint(args.node_modules, [f])
        else:
            objs = [d for d in yaml.safe_load_all(f.read_text()) if d]
            errors = [e for _, v, e in validate(objs, schemas, args.node_modules, here) if e and v == expected]
        entry = {"example": f.name, "validator": expected, "rejected": bool(errors), "errors": errors[:2]}
        summary["broken"].append(entry)
        if not errors:
            summary["failures"].append(
                {"where": f"k8s/tests/broken/{f.name}", "error": f"the {expected} validator accepted it"}
            )

    for r in summary["rendered"]:
        print(f"rendered {r['kustomization']:<42} {r['objects']:>3} objects")
    print("validated: " + ", ".join(f"{k} {n}" for k, n in sorted(summary["objects"].items())) + f", tekton {len(tekton_files)} files")
    for b in summary["broken"]:
        status = "rejected" if b["rejected"] else "ACCEPTED"
        print(f"broken example {b['example']:<40} {status} by {b['validator']}: {(b['errors'] or [''])[0][:110]}")
    for fail in summary["failures"]:
        print(f"FAIL {fail['where']}: {fail.get('validator', '')} {fail['error']}")
    print(f"manifests: {'ok' if not summary['failures'] else str(len(summary['failures'])) + ' failures'}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(summary, indent=2))
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
