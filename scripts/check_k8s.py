#!/usr/bin/env python3
"""Offline checks of Vigil's rendered Kubernetes manifests (stdlib + PyYAML).

Usage:
  check_k8s.py [--kind-config deploy/kind-config.yaml] RENDERED.yaml...
      Validate each file, as produced by `kubectl kustomize k8s/<base|overlays/ENV>`.
  check_k8s.py --extract KIND/NAME RENDERED.yaml
      Print one object of a rendered file as YAML (e.g. Service/inference).
  check_k8s.py --expect-slot SLOT [--expect-previous SLOT] SERVICE.yaml
      Check a (blue/green-switched) inference Service: it selects exactly SLOT and, if
      given, records the previous slot in the vigil.io/previous-slot annotation.

Every failed check is printed (prefixed with the file name) and the exit status is 1.
Run by scripts/check-k8s.sh.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

try:
    import yaml
except ImportError:  # pragma: no cover - exercised only on machines without PyYAML
    sys.stderr.write("check_k8s.py needs PyYAML: python3 -m pip install pyyaml\n")
    sys.exit(2)

# --- what Vigil must look like -------------------------------------------------------------

SERVICES = ("ingest", "feature-service", "trainer", "inference", "drift-monitor")
SLOTS = ("blue", "green")
GRPC_PORT = 50051
ADMIN_PORT = 9090
CONFIGMAP = "vigil-config"
PART_OF = "vigil"
NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"
ENV_LABEL = "vigil.io/environment"
PREVIOUS_SLOT_ANNOTATION = "vigil.io/previous-slot"


def deployments_of(service: str) -> tuple[str, ...]:
    if service == "inference":
        return tuple(f"inference-{slot}" for slot in SLOTS)
    return (service,)


# Shared configuration every service reads (exact names and values).
SHARED_CONFIG = {
    "VIGIL_SERVER__GRPC_ADDR": "0.0.0.0:50051",
    "VIGIL_SERVER__ADMIN_ADDR": "0.0.0.0:9090",
    "VIGIL_KAFKA__BROKERS": "kafka:9092",
    "VIGIL_KAFKA__TANSU_COMPAT": "false",
    "VIGIL_REDIS__URL": "redis://redis:6379",
    "VIGIL_TELEMETRY__LOG_FORMAT": "json",
    "VIGIL_LAKE__PATH": "/data/lake",
    "VIGIL_REGISTRY__PATH": "/data/registry",
}
# Per-service configuration on top of SHARED_CONFIG.
SERVICE_CONFIG = {
    "inference": {
        "VIGIL_FEATURES__ENDPOINT": "http://feature-service:50051",
    },
    "drift-monitor": {
        "VIGIL_ROLLOUT__ENABLED": "true",
    },
}
# Per-Deployment configuration on top of SERVICE_CONFIG: the blue/green slots serve different
# aliases (green follows `staging`, where the gate promotes), each in its own consumer group.
DEPLOYMENT_CONFIG = {
    "inference-blue": {
        "VIGIL_INFERENCE__MODEL_ALIAS": "production",
        "VIGIL_INFERENCE__SHADOW_ALIAS": "candidate",
        "VIGIL_INFERENCE__CONSUMER_GROUP": "vigil-inference-blue",
    },
    "inference-green": {
        "VIGIL_INFERENCE__MODEL_ALIAS": "staging",
        "VIGIL_INFERENCE__CONSUMER_GROUP": "vigil-inference-green",
    },
}
# Production replaces the in-cluster dev Redis/Kafka with managed ones (placeholders in the
# overlay) and turns TLS on for inference -> feature-service.
PRODUCTION_OVERRIDES = {
    "VIGIL_REDIS__URL": None,  # any value: the managed Redis
    "VIGIL_KAFKA__BROKERS": None,  # any value: the SASL_SSL brokers
    "VIGIL_FEATURES__ENDPOINT": "https://feature-service:50051",
}
# Config sections each service reads (service_runtime::ServiceConfig::SECTIONS); a service
# ignores the others, so only these need their *_FILE secrets mounted.
SERVICE_SECTIONS = {
    "ingest": {"server", "kafka", "redis"},
    "feature-service": {"server", "kafka", "redis"},
    "trainer": {"server"},
    "inference": {"server", "kafka", "features"},
    "drift-monitor": {"server", "kafka"},
}
# Production security settings every service (or every user of a section) must have.
PRODUCTION_SECURITY = {
    "server": {
        "VIGIL_SERVER__TLS__CERT_FILE": None,
        "VIGIL_SERVER__TLS__KEY_FILE": None,
        "VIGIL_SERVER__TLS__CLIENT_CA_FILE": None,
        "VIGIL_SERVER__AUTH__TOKENS_FILE": None,
    },
    "redis": {"VIGIL_REDIS__USERNAME": None, "VIGIL_REDIS__PASSWORD_FILE": None},
    "kafka": {
        "VIGIL_KAFKA__SECURITY__PROTOCOL": "sasl_ssl",
        "VIGIL_KAFKA__SECURITY__SASL_MECHANISM": "SCRAM-SHA-512",
        "VIGIL_KAFKA__SECURITY__USERNAME": None,
        "VIGIL_KAFKA__SECURITY__PASSWORD_FILE": None,
        "VIGIL_KAFKA__SECURITY__CA_FILE": None,
    },
    "features": {
        "VIGIL_FEATURES__SECURITY__CA_FILE": None,
        "VIGIL_FEATURES__SECURITY__CERT_FILE": None,
        "VIGIL_FEATURES__SECURITY__KEY_FILE": None,
        "VIGIL_FEATURES__SECURITY__TOKEN_FILE": None,
    },
}
# Secrets the production overlay mounts (created out of band, see k8s/README.md).
PRODUCTION_SECRETS = {
    "vigil-tls": ("tls.crt", "tls.key", "ca.crt"),
    "vigil-tokens": ("tokens", "token"),
    "vigil-redis": ("password",),
    "vigil-kafka": ("password", "ca.crt"),
}
DEFAULT_DENY_POLICY = "default-deny-all"
# Shared volumes: claim -> (mount path, services that mount it read-write, read-only).
SHARED_VOLUMES = {
    "vigil-lake": ("/data/lake", {"feature-service"}, {"trainer"}),
    # drift-monitor writes too: the rollout gate moves `staging` and removes `candidate`.
    "vigil-registry": ("/data/registry", {"trainer", "drift-monitor"}, {"inference"}),
}
TOPICS = (
    "vigil.transactions.v1",
    "vigil.features.v1",
    "vigil.scores.v1",
    "vigil.labels.v1",
    "vigil.profiles.v1",
    "vigil.quarantine.v1",
    "vigil.drift.v1",
)
TOPIC_PARTITIONS = 6

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet")
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "PersistentVolume",
    "StorageClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PriorityClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}
# Pod Security Standards, "restricted" profile: allowed pod volume types.
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}

# --- helpers --------------------------------------------------------------------------------

_CPU_RE = re.compile(r"^([0-9.]+(?:[eE][+-]?[0-9]+)?)(m?)$")
_MEM_RE = re.compile(r"^([0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E|m)?$")
_MEM_FACTORS = {
    None: Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "K": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


def parse_quantity(resource: str, value: Any) -> Decimal:
    """Parse a Kubernetes quantity (cpu in cores, memory in bytes)."""
    text = str(value).strip()
    try:
        if resource == "cpu":
            m = _CPU_RE.match(text)
            if not m:
                raise ValueError
            number = Decimal(m.group(1))
            return number / 1000 if m.group(2) == "m" else number
        m = _MEM_RE.match(text)
        if not m:
            raise ValueError
        return Decimal(m.group(1)) * _MEM_FACTORS[m.group(2)]
    except (ValueError, InvalidOperation):
        raise ValueError(f"invalid {resource} quantity {value!r}") from None


def dig(obj: Any, *path: Any, default: Any = None) -> Any:
    for key in path:
        if isinstance(obj, dict):
            obj = obj.get(key)
        elif isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return default
        if obj is None:
            return default
    return obj


def selector_matches(selector: dict[str, str] | None, labels: dict[str, str] | None) -> bool:
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def image_repo_and_tag(image: str) -> tuple[str, str | None, str | None]:
    """Split an image reference into (repository, tag, digest)."""
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = image.rsplit(":", 1)
        return repo, tag, digest
    return image, None, digest


def load_documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        docs = [d for d in yaml.safe_load_all(fh) if d is not None]
    out: list[dict[str, Any]] = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "List":
            out.extend(doc.get("items") or [])
        else:
            out.append(doc)
    return out


@dataclass
class Render:
    path: Path
    objects: list[dict[str, Any]]
    errors: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.errors.append(message)

    def check(self, condition: bool, message: str) -> bool:
        if not condition:
            self.fail(message)
        return condition

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o.get("kind") == kind]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        for obj in self.of_kind(kind):
            if dig(obj, "metadata", "name") != name:
                continue
            if namespace is not None and kind not in CLUSTER_SCOPED_KINDS:
                if dig(obj, "metadata", "namespace") != namespace:
                    continue
            return obj
        return None


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return dig(obj, "spec", "template", "spec", default={}) or {}


def all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def ref(obj: dict[str, Any]) -> str:
    ns = dig(obj, "metadata", "namespace")
    name = dig(obj, "metadata", "name")
    return f"{obj.get('kind')}/{name}" + (f" (ns {ns})" if ns else "")


# --- checks ---------------------------------------------------------------------------------


def check_structure(r: Render) -> None:
    seen: set[tuple[str, str | None, str]] = set()
    for obj in r.objects:
        if not isinstance(obj, dict):
            r.fail(f"a document is not a mapping: {obj!r:.80}")
            continue
        for key in ("apiVersion", "kind"):
            r.check(bool(obj.get(key)), f"object without {key}: {obj!r:.120}")
        name = dig(obj, "metadata", "name")
        if not r.check(bool(name), f"{obj.get('kind')} without metadata.name"):
            continue
        key = (str(obj.get("kind")), dig(obj, "metadata", "namespace"), str(name))
        r.check(key not in seen, f"duplicate object {ref(obj)}")
        seen.add(key)


def environment_of(r: Render) -> str | None:
    envs = {dig(o, "metadata", "labels", ENV_LABEL) for o in r.objects}
    envs.discard(None)
    if len(envs) > 1:
        r.fail(f"objects carry different {ENV_LABEL} labels: {sorted(envs)}")
    return next(iter(envs)) if len(envs) == 1 else None


def check_namespaces(r: Render, env: str | None) -> str | None:
    namespaced = [o for o in r.objects if o.get("kind") not in CLUSTER_SCOPED_KINDS]
    namespaces = {dig(o, "metadata", "namespace") for o in namespaced}
    if len(namespaces) > 1:
        r.fail(f"objects are spread over several namespaces: {sorted(map(str, namespaces))}")
        return None
    namespace = next(iter(namespaces)) if namespaces else None
    if env is not None:
        for obj in r.objects:
            r.check(
                dig(obj, "metadata", "labels", ENV_LABEL) == env,
                f"{ref(obj)} lacks label {ENV_LABEL}={env}",
            )
            if obj.get("kind") in WORKLOAD_KINDS:
                r.check(
                    dig(obj, "spec", "template", "metadata", "labels", ENV_LABEL) == env,
                    f"{ref(obj)}: pod template lacks label {ENV_LABEL}={env}",
                )
        r.check(
            namespace == f"vigil-{env}",
            f"environment {env!r} should live in namespace vigil-{env}, found {namespace!r}",
        )
    if namespace is not None:
        r.check(
            r.get("Namespace", namespace) is not None,
            f"namespace {namespace} is used but no Namespace object is rendered "
            "(`kubectl apply -k` would fail on a fresh cluster)",
        )
    return namespace


def check_pod_security(r: Render) -> None:
    """Every pod template meets the 'restricted' Pod Security Standard and has resources."""
    for obj in r.objects:
        if obj.get("kind") not in WORKLOAD_KINDS:
            continue
        spec = pod_spec(obj)
        where = ref(obj)
        pod_sc = spec.get("securityContext") or {}
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            r.check(not spec.get(flag), f"{where}: {flag} is set")
        for vol in spec.get("volumes") or []:
            kinds = set(vol) - {"name"}
            r.check(
                kinds <= RESTRICTED_VOLUME_TYPES,
                f"{where}: volume {vol.get('name')!r} of type {sorted(kinds)} is not allowed "
                "by the restricted Pod Security Standard",
            )
        pod_seccomp = dig(pod_sc, "seccompProfile", "type")
        containers = all_containers(spec)
        r.check(bool(spec.get("containers")), f"{where}: no containers")
        for c in containers:
            cname = f"{where} container {c.get('name')!r}"
            sc = c.get("securityContext") or {}
            run_as_non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
            r.check(run_as_non_root is True, f"{cname}: runAsNonRoot is not true")
            run_as_user = sc.get("runAsUser", pod_sc.get("runAsUser"))
            r.check(run_as_user != 0, f"{cname}: runAsUser is 0")
            r.check(sc.get("allowPrivilegeEscalation") is False, f"{cname}: allowPrivilegeEscalation is not false")
            r.check(not sc.get("privileged"), f"{cname}: privileged")
            drop = dig(sc, "capabilities", "drop", default=[]) or []
            r.check("ALL" in drop, f"{cname}: capabilities.drop does not contain ALL")
            add = set(dig(sc, "capabilities", "add", default=[]) or [])
            r.check(add <= {"NET_BIND_SERVICE"}, f"{cname}: adds capabilities {sorted(add)}")
            seccomp = dig(sc, "seccompProfile", "type") or pod_seccomp
            r.check(
                seccomp in ("RuntimeDefault", "Localhost"),
                f"{cname}: seccompProfile must be RuntimeDefault (pod or container), got {seccomp!r}",
            )
            r.check(bool(c.get("image")), f"{cname}: no image")
            check_resources(r, cname, c)


def check_resources(r: Render, where: str, container: dict[str, Any]) -> None:
    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        for res in ("cpu", "memory"):
            r.check(dig(resources, kind, res) is not None, f"{where}: resources.{kind}.{res} missing")
    for res in ("cpu", "memory"):
        req, lim = dig(resources, "requests", res), dig(resources, "limits", res)
        if req is None or lim is None:
            continue
        try:
            r.check(
                parse_quantity(res, req) <= parse_quantity(res, lim),
                f"{where}: {res} request {req} exceeds limit {lim}",
            )
        except ValueError as exc:
            r.fail(f"{where}: {exc}")


def main_container(r: Render, obj: dict[str, Any], name: str) -> dict[str, Any] | None:
    containers = pod_spec(obj).get("containers") or []
    for c in containers:
        if c.get("name") == name:
            return c
    if len(containers) == 1:
        return containers[0]
    r.fail(f"{ref(obj)}: no container named {name!r}")
    return None


def effective_env(r: Render, obj: dict[str, Any], container: dict[str, Any], namespace: str | None) -> dict[str, str]:
    """Environment a container gets from envFrom ConfigMaps and env (checking references)."""
    where = f"{ref(obj)} container {container.get('name')!r}"
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        cm_name = dig(source, "configMapRef", "name")
        if cm_name is None:
            continue
        cm = r.get("ConfigMap", cm_name, namespace)
        if cm is None:
            if not dig(source, "configMapRef", "optional"):
                r.fail(f"{where}: envFrom ConfigMap {cm_name!r} is not in the render")
            continue
        prefix = source.get("prefix") or ""
        for key, value in (cm.get("data") or {}).items():
            env[prefix + key] = str(value)
    for var in container.get("env") or []:
        name = var.get("name")
        if "value" in var:
            env[name] = str(var["value"])
            continue
        cm_ref = dig(var, "valueFrom", "configMapKeyRef")
        if cm_ref:
            cm = r.get("ConfigMap", cm_ref.get("name"), namespace)
            if cm is None or cm_ref.get("key") not in (cm.get("data") or {}):
                if not cm_ref.get("optional"):
                    r.fail(f"{where}: env {name} refers to missing ConfigMap key {cm_ref.get('name')}/{cm_ref.get('key')}")
                continue
            env[name] = str(cm["data"][cm_ref["key"]])
        else:
            env.setdefault(name, "<from valueFrom>")
    return env


def check_probe(r: Render, where: str, container: dict[str, Any], probe: str, env: str | None) -> None:
    """gRPC probes on 50051; in production (gRPC over TLS, which probes cannot speak)
    httpGet on the admin port: /readyz for readiness, /healthz otherwise."""
    if env == "production":
        path = "/readyz" if probe == "readinessProbe" else "/healthz"
        get = dig(container, probe, "httpGet") or {}
        r.check(
            get.get("port") in ("admin", ADMIN_PORT) and get.get("path") == path
            and not dig(container, probe, "grpc"),
            f"{where}: production {probe} must be httpGet {path} on the admin port "
            f"(gRPC probes cannot do TLS), got {container.get(probe)!r}",
        )
        return
    port = dig(container, probe, "grpc", "port")
    r.check(
        port == GRPC_PORT,
        f"{where}: {probe} must be a native gRPC probe on port {GRPC_PORT} (grpc: {{port: {GRPC_PORT}}}), got {container.get(probe)!r}",
    )


def check_services(r: Render, env: str | None, namespace: str | None) -> None:
    deployments = {dig(d, "metadata", "name"): d for d in r.of_kind("Deployment")}
    for service in SERVICES:
        for dname in deployments_of(service):
            dep = deployments.get(dname)
            if not r.check(dep is not None, f"Deployment {dname} (service {service}) is missing"):
                continue
            check_service_deployment(r, service, dname, dep, env, namespace)
        check_service_object(r, service, deployments)


def check_service_deployment(
    r: Render, service: str, dname: str, dep: dict[str, Any], env: str | None, namespace: str | None
) -> None:
    where = ref(dep)
    labels = dig(dep, "metadata", "labels", default={}) or {}
    tlabels = dig(dep, "spec", "template", "metadata", "labels", default={}) or {}
    selector = dig(dep, "spec", "selector", "matchLabels", default={}) or {}
    for what, lbls in (("metadata", labels), ("pod template", tlabels)):
        r.check(lbls.get(NAME_LABEL) == service, f"{where}: {what} label {NAME_LABEL} should be {service!r}")
        r.check(lbls.get(PART_OF_LABEL) == PART_OF, f"{where}: {what} label {PART_OF_LABEL} should be {PART_OF!r}")
    r.check(bool(selector), f"{where}: empty spec.selector.matchLabels")
    r.check(selector_matches(selector, tlabels), f"{where}: selector {selector} does not match its pod template labels")
    if service == "inference":
        slot = dname.rsplit("-", 1)[-1]
        for what, lbls in (("metadata", labels), ("pod template", tlabels), ("selector", selector)):
            r.check(lbls.get("slot") == slot, f"{where}: {what} must carry slot={slot}")
    replicas = dig(dep, "spec", "replicas", default=1)
    if env == "production" and service == "inference":
        r.check(replicas >= 2, f"{where}: production runs at least 2 replicas per inference slot, found {replicas}")

    container = main_container(r, dep, service)
    if container is None:
        return
    cwhere = f"{where} container {container.get('name')!r}"

    image = str(container.get("image") or "")
    repo, tag, digest = image_repo_and_tag(image)
    r.check(
        repo.rsplit("/", 1)[-1] in (service, f"vigil-{service}"),
        f"{cwhere}: image {image!r} is not the {service} image",
    )
    r.check(bool(tag or digest), f"{cwhere}: image {image!r} has no tag")
    r.check(tag != "latest", f"{cwhere}: image {image!r} uses :latest")
    if env == "staging":
        r.check(tag == "staging" or digest is not None, f"{cwhere}: staging image should be tagged 'staging', got {image!r}")
    if env == "production":
        r.check(
            digest is not None or (tag not in (None, "dev", "staging", "latest", "main")),
            f"{cwhere}: production image must be pinned to a release, got {image!r}",
        )

    ports = {p.get("containerPort"): p.get("name") for p in container.get("ports") or []}
    r.check(ports.get(GRPC_PORT) == "grpc", f"{cwhere}: containerPort {GRPC_PORT} named 'grpc' missing")
    r.check(ports.get(ADMIN_PORT) == "admin", f"{cwhere}: containerPort {ADMIN_PORT} named 'admin' missing")
    check_probe(r, cwhere, container, "livenessProbe", env)
    check_probe(r, cwhere, container, "readinessProbe", env)
    if container.get("startupProbe"):
        check_probe(r, cwhere, container, "startupProbe", env)

    sc = container.get("securityContext") or {}
    r.check(sc.get("readOnlyRootFilesystem") is True, f"{cwhere}: readOnlyRootFilesystem should be true")

    r.check(
        any(dig(s, "configMapRef", "name") == CONFIGMAP for s in container.get("envFrom") or []),
        f"{cwhere}: does not load ConfigMap {CONFIGMAP} through envFrom",
    )
    env_vars = effective_env(r, dep, container, namespace)
    wanted: dict[str, str | None] = dict(SHARED_CONFIG)
    wanted.update(SERVICE_CONFIG.get(service, {}))
    wanted.update(DEPLOYMENT_CONFIG.get(dname, {}))
    if env == "production":
        wanted.update({k: v for k, v in PRODUCTION_OVERRIDES.items() if k in wanted})
    for key, value in wanted.items():
        if value is None:
            r.check(bool(env_vars.get(key)), f"{cwhere}: {key} is not set")
        else:
            r.check(env_vars.get(key) == value, f"{cwhere}: {key} should be {value!r}, got {env_vars.get(key)!r}")
    if env == "production":
        check_production_security(r, service, dep, container, env_vars)

    # PVC-backed volumes exist; the shared ones are mounted where and how they should be.
    spec = pod_spec(dep)
    claims = {
        v.get("name"): dig(v, "persistentVolumeClaim", "claimName")
        for v in spec.get("volumes") or []
        if v.get("persistentVolumeClaim")
    }
    for claim in claims.values():
        r.check(r.get("PersistentVolumeClaim", claim, namespace) is not None, f"{where}: PVC {claim!r} is not in the render")
    mounts = {m.get("name"): m for m in container.get("volumeMounts") or []}
    for claim, (mount_path, writers, readers) in SHARED_VOLUMES.items():
        volume = next((vname for vname, c in claims.items() if c == claim), None)
        if service in writers or service in readers:
            mount = mounts.get(volume) if volume else None
            if not r.check(mount is not None, f"{cwhere}: does not mount PVC {claim}"):
                continue
            r.check(mount.get("mountPath") == mount_path, f"{cwhere}: {claim} should be mounted at {mount_path}")
            read_only = bool(mount.get("readOnly"))
            if service in writers:
                r.check(not read_only, f"{cwhere}: {claim} must be writable for {service}")
            else:
                r.check(read_only, f"{cwhere}: {claim} should be mounted read-only for {service}")
        else:
            r.check(volume is None, f"{cwhere}: has no business mounting {claim}")


def check_production_security(
    r: Render, service: str, dep: dict[str, Any], container: dict[str, Any], env_vars: dict[str, str]
) -> None:
    """TLS, mTLS, tokens, Redis auth and Kafka SASL_SSL are on, and every secret file the
    service reads lies in a read-only mounted Secret that provides it."""
    cwhere = f"{ref(dep)} container {container.get('name')!r}"
    sections = SERVICE_SECTIONS[service]
    for section in sorted(sections):
        for key, value in PRODUCTION_SECURITY.get(section, {}).items():
            got = env_vars.get(key)
            if value is None:
                r.check(bool(got), f"{cwhere}: production must set {key}")
            else:
                r.check(got == value, f"{cwhere}: production {key} should be {value!r}, got {got!r}")
    secret_volumes = {
        v.get("name"): dig(v, "secret", "secretName")
        for v in pod_spec(dep).get("volumes") or []
        if v.get("secret")
    }
    mounts = [
        (m.get("mountPath", "").rstrip("/"), secret_volumes[m.get("name")], bool(m.get("readOnly")))
        for m in container.get("volumeMounts") or []
        if m.get("name") in secret_volumes
    ]
    for key, path in sorted(env_vars.items()):
        section = key[len("VIGIL_"):].split("__", 1)[0].lower()
        if not key.endswith("_FILE") or section not in sections or not path.startswith("/etc/vigil/secrets/"):
            if key.endswith("_FILE") and section in sections:
                r.fail(f"{cwhere}: {key}={path!r} should name a file under /etc/vigil/secrets/")
            continue
        mount = next((m for m in mounts if path.startswith(m[0] + "/")), None)
        if not r.check(mount is not None, f"{cwhere}: {key}={path!r} is not in a mounted Secret"):
            continue
        directory, secret, read_only = mount
        r.check(read_only, f"{cwhere}: Secret {secret} mounted at {directory} must be readOnly")
        item = path[len(directory) + 1 :]
        r.check(
            item in PRODUCTION_SECRETS.get(secret, ()),
            f"{cwhere}: {key} reads {item!r} from Secret {secret}, which provides {PRODUCTION_SECRETS.get(secret)}",
        )
    endpoint = env_vars.get("VIGIL_FEATURES__ENDPOINT", "")
    if "features" in sections:
        r.check(endpoint.startswith("https://"), f"{cwhere}: production feature endpoint must be https://, got {endpoint!r}")


def selector_selects(selector: dict[str, Any] | None, labels: dict[str, str] | None) -> bool:
    """A LabelSelector (matchLabels + matchExpressions) against labels; {} selects all."""
    selector = selector or {}
    labels = labels or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def check_network_policies(r: Render) -> None:
    """A default-deny for ingress and egress, DNS egress, every policy selecting real pods,
    and every allowed port being one a selected (or peer) pod actually listens on."""
    policies = r.of_kind("NetworkPolicy")
    pods = [
        (ref(o), dig(o, "spec", "template", "metadata", "labels", default={}) or {}, pod_spec(o))
        for o in r.objects
        if o.get("kind") in WORKLOAD_KINDS
    ]
    deny = r.get("NetworkPolicy", DEFAULT_DENY_POLICY)
    if r.check(deny is not None, f"NetworkPolicy {DEFAULT_DENY_POLICY} (default deny) is missing"):
        spec = deny.get("spec") or {}
        r.check(spec.get("podSelector") == {}, f"{ref(deny)}: podSelector must be {{}} (every pod)")
        r.check(
            set(spec.get("policyTypes") or []) == {"Ingress", "Egress"},
            f"{ref(deny)}: policyTypes must be [Ingress, Egress], got {spec.get('policyTypes')}",
        )
        r.check(not spec.get("ingress") and not spec.get("egress"), f"{ref(deny)}: a default deny has no rules")
    dns = False
    for pol in policies:
        spec = pol.get("spec") or {}
        selected = [p for p in pods if selector_selects(spec.get("podSelector"), p[1])]
        r.check(bool(selected), f"{ref(pol)}: podSelector {spec.get('podSelector')} selects no pod")
        for rule in spec.get("ingress") or []:
            for port in rule.get("ports") or []:
                listening = any(
                    cp.get("containerPort") == port.get("port") or cp.get("name") == port.get("port")
                    for _, _, ps in selected
                    for c in all_containers(ps)
                    for cp in c.get("ports") or []
                )
                r.check(listening, f"{ref(pol)}: ingress port {port.get('port')} is not a port of the selected pods")
        for rule in spec.get("egress") or []:
            ports = {(p.get("protocol", "TCP"), p.get("port")) for p in rule.get("ports") or []}
            to_kube_system = any(
                dig(peer, "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name") == "kube-system"
                for peer in rule.get("to") or []
            )
            if spec.get("podSelector") == {} and to_kube_system and {("UDP", 53), ("TCP", 53)} <= ports:
                dns = True
    r.check(dns, "no NetworkPolicy allows every pod DNS egress (UDP and TCP 53) to kube-system")
    if policies:
        # Every Vigil service pod must be reachable on its gRPC port from somewhere.
        for service in SERVICES:
            for dname in deployments_of(service):
                dep = r.get("Deployment", dname)
                if dep is None:
                    continue
                labels = dig(dep, "spec", "template", "metadata", "labels", default={}) or {}
                r.check(
                    any(
                        selector_selects(dig(p, "spec", "podSelector"), labels)
                        and any(
                            port.get("port") in (GRPC_PORT, "grpc")
                            for rule in dig(p, "spec", "ingress", default=[]) or []
                            for port in rule.get("ports") or []
                        )
                        for p in policies
                    ),
                    f"Deployment {dname}: no NetworkPolicy allows ingress to its gRPC port {GRPC_PORT}",
                )


def check_production_secrets(r: Render, env: str | None) -> None:
    """Production mounts the Secrets but never renders them (their values are not in git)."""
    if env != "production":
        return
    for secret in r.of_kind("Secret"):
        r.check(
            dig(secret, "metadata", "name") not in PRODUCTION_SECRETS,
            f"{ref(secret)}: production Secrets are created out of band, not rendered from git",
        )


def check_service_object(r: Render, service: str, deployments: dict[str, dict[str, Any]]) -> None:
    svc = r.get("Service", service)
    if not r.check(svc is not None, f"Service {service} is missing"):
        return
    where = ref(svc)
    selector = dig(svc, "spec", "selector", default={}) or {}
    r.check(selector.get(NAME_LABEL) == service, f"{where}: selector must include {NAME_LABEL}={service}")
    ports = dig(svc, "spec", "ports", default=[]) or []
    grpc = next((p for p in ports if p.get("name") == "grpc"), None)
    if r.check(grpc is not None, f"{where}: no port named 'grpc'"):
        r.check(grpc.get("port") == GRPC_PORT, f"{where}: grpc port should be {GRPC_PORT}")
        r.check(grpc.get("targetPort") in ("grpc", GRPC_PORT), f"{where}: grpc targetPort should be 'grpc'")
    r.check(
        any(p.get("port") == ADMIN_PORT for p in ports),
        f"{where}: admin port {ADMIN_PORT} is not exposed",
    )
    matched = sorted(
        name
        for name, dep in deployments.items()
        if selector_matches(selector, dig(dep, "spec", "template", "metadata", "labels"))
    )
    if service == "inference":
        slot = selector.get("slot")
        if r.check(slot in SLOTS, f"{where}: must select exactly one slot (slot: blue|green), selector is {selector}"):
            r.check(
                matched == [f"inference-{slot}"],
                f"{where}: selector {selector} must match exactly Deployment inference-{slot}, matches {matched}",
            )
    else:
        r.check(matched == [service], f"{where}: selector {selector} should match exactly Deployment {service}, matches {matched}")


def check_stateful_backends(r: Render) -> None:
    for name in ("redis", "kafka"):
        sts = r.get("StatefulSet", name)
        if not r.check(sts is not None, f"StatefulSet {name} is missing"):
            continue
        where = ref(sts)
        r.check(bool(dig(sts, "spec", "volumeClaimTemplates")), f"{where}: no volumeClaimTemplates (data would not persist)")
        governing = r.get("Service", dig(sts, "spec", "serviceName", default=""))
        if r.check(governing is not None, f"{where}: serviceName {dig(sts, 'spec', 'serviceName')!r} is not a rendered Service"):
            r.check(dig(governing, "spec", "clusterIP") == "None", f"{where}: governing Service {ref(governing)} is not headless")
            r.check(
                selector_matches(dig(governing, "spec", "selector"), dig(sts, "spec", "template", "metadata", "labels")),
                f"{where}: governing Service does not select its pods",
            )

    redis = r.get("Service", "redis")
    if r.check(redis is not None, "Service redis is missing"):
        r.check(dig(redis, "spec", "clusterIP") == "None", "Service redis should be headless")
        r.check(any(p.get("port") == 6379 for p in dig(redis, "spec", "ports", default=[])), "Service redis: port 6379")
    redis_sts = r.get("StatefulSet", "redis")
    if redis_sts is not None:
        image = str(dig(pod_spec(redis_sts), "containers", 0, "image", default=""))
        r.check(image.startswith("redis:7"), f"StatefulSet redis: image should be redis:7, got {image!r}")

    kafka_svc = r.get("Service", "kafka")
    if r.check(kafka_svc is not None, "Service kafka is missing"):
        r.check(any(p.get("port") == 9092 for p in dig(kafka_svc, "spec", "ports", default=[])), "Service kafka: port 9092")
    kafka = r.get("StatefulSet", "kafka")
    if kafka is not None:
        spec = pod_spec(kafka)
        container = (spec.get("containers") or [{}])[0]
        image = str(container.get("image") or "")
        r.check(image.startswith("apache/kafka:"), f"StatefulSet kafka: image should be apache/kafka, got {image!r}")
        r.check(dig(kafka, "spec", "replicas", default=1) == 1, "StatefulSet kafka: single-node KRaft must have replicas 1")
        r.check(spec.get("enableServiceLinks") is False, "StatefulSet kafka: enableServiceLinks must be false (KAFKA_* service env vars)")
        env = {e.get("name"): e.get("value") for e in container.get("env") or []}
        roles = set((env.get("KAFKA_PROCESS_ROLES") or "").split(","))
        r.check(roles == {"broker", "controller"}, f"StatefulSet kafka: KAFKA_PROCESS_ROLES should be broker,controller, got {env.get('KAFKA_PROCESS_ROLES')!r}")
        for key in (
            "CLUSTER_ID",
            "KAFKA_NODE_ID",
            "KAFKA_LISTENERS",
            "KAFKA_ADVERTISED_LISTENERS",
            "KAFKA_CONTROLLER_LISTENER_NAMES",
            "KAFKA_CONTROLLER_QUORUM_VOTERS",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "KAFKA_LOG_DIRS",
        ):
            r.check(bool(env.get(key)), f"StatefulSet kafka: {key} is not set")
        r.check(env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false", "StatefulSet kafka: auto topic creation must be disabled")
        for key in (
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
            "KAFKA_DEFAULT_REPLICATION_FACTOR",
        ):
            r.check(env.get(key) == "1", f"StatefulSet kafka: {key} should be 1 on a single broker, got {env.get(key)!r}")
        node_id = env.get("KAFKA_NODE_ID")
        voters = env.get("KAFKA_CONTROLLER_QUORUM_VOTERS") or ""
        r.check(voters.startswith(f"{node_id}@"), f"StatefulSet kafka: quorum voters {voters!r} do not name node {node_id}")
        advertised = env.get("KAFKA_ADVERTISED_LISTENERS") or ""
        r.check(":9092" in advertised, f"StatefulSet kafka: advertised listener {advertised!r} should be on port 9092")
        r.check("CONTROLLER" not in advertised, "StatefulSet kafka: the controller listener must not be advertised")


def check_topics_job(r: Render) -> None:
    job = r.get("Job", "kafka-topics")
    if not r.check(job is not None, "Job kafka-topics is missing"):
        return
    container = (pod_spec(job).get("containers") or [{}])[0]
    env = {e.get("name"): str(e.get("value")) for e in container.get("env") or [] if "value" in e}
    text = " ".join(str(x) for x in (container.get("command") or []) + (container.get("args") or []))
    text += " " + " ".join(env.values())
    for topic in TOPICS:
        r.check(topic in text.split() or topic in text, f"Job kafka-topics does not create topic {topic}")
    r.check("--if-not-exists" in text, "Job kafka-topics must use --if-not-exists (idempotent)")
    partitions_ok = f"--partitions {TOPIC_PARTITIONS}" in text or (
        "--partitions" in text and str(TOPIC_PARTITIONS) in env.values()
    )
    r.check(partitions_ok, f"Job kafka-topics must create {TOPIC_PARTITIONS} partitions per topic")
    r.check(pod_spec(job).get("restartPolicy") in ("OnFailure", "Never"), "Job kafka-topics: restartPolicy must be OnFailure or Never")


def check_configmap(r: Render, env: str | None) -> None:
    cm = r.get("ConfigMap", CONFIGMAP)
    if not r.check(cm is not None, f"ConfigMap {CONFIGMAP} is missing"):
        return
    data = cm.get("data") or {}
    for key, value in SHARED_CONFIG.items():
        if env == "production" and key in PRODUCTION_OVERRIDES:
            r.check(bool(data.get(key)), f"ConfigMap {CONFIGMAP}: {key} is not set")
            continue
        r.check(data.get(key) == value, f"ConfigMap {CONFIGMAP}: {key} should be {value!r}, got {data.get(key)!r}")


def check_volumes(r: Render, namespace: str | None) -> None:
    for claim in SHARED_VOLUMES:
        pvc = r.get("PersistentVolumeClaim", claim, namespace)
        if not r.check(pvc is not None, f"PersistentVolumeClaim {claim} is missing"):
            continue
        modes = dig(pvc, "spec", "accessModes", default=[]) or []
        r.check("ReadWriteMany" in modes, f"{ref(pvc)}: shared by several pods, must be ReadWriteMany (has {modes})")
        volume_name = dig(pvc, "spec", "volumeName")
        if volume_name:
            pv = r.get("PersistentVolume", volume_name)
            if r.check(pv is not None, f"{ref(pvc)}: volumeName {volume_name!r} is not a rendered PersistentVolume"):
                r.check(
                    dig(pv, "spec", "storageClassName") == dig(pvc, "spec", "storageClassName"),
                    f"{ref(pvc)}: storageClassName differs from PersistentVolume {volume_name}",
                )
                r.check("ReadWriteMany" in (dig(pv, "spec", "accessModes", default=[]) or []), f"{ref(pv)}: not ReadWriteMany")
                claim_ref = dig(pv, "spec", "claimRef")
                if claim_ref:
                    r.check(
                        claim_ref.get("name") == claim and claim_ref.get("namespace") == namespace,
                        f"{ref(pv)}: claimRef {claim_ref} does not point at {claim} in namespace {namespace}",
                    )
                try:
                    r.check(
                        parse_quantity("memory", dig(pv, "spec", "capacity", "storage", default="0"))
                        >= parse_quantity("memory", dig(pvc, "spec", "resources", "requests", "storage", default="0")),
                        f"{ref(pv)}: smaller than the claim {claim}",
                    )
                except ValueError as exc:
                    r.fail(f"{ref(pv)}: {exc}")


def check_kind(r: Render, env: str | None, kind_config: Path | None) -> None:
    """The kind overlay exposes inference on the node port that deploy/kind-config.yaml maps."""
    if env != "dev" or kind_config is None:
        return
    config = yaml.safe_load(kind_config.read_text(encoding="utf-8"))
    container_ports = {
        m.get("containerPort")
        for node in config.get("nodes") or []
        for m in node.get("extraPortMappings") or []
    }
    svc = r.get("Service", "inference")
    if svc is None:
        return
    grpc = next((p for p in dig(svc, "spec", "ports", default=[]) if p.get("name") == "grpc"), {})
    r.check(dig(svc, "spec", "type") == "NodePort", "kind: Service inference should be a NodePort")
    r.check(
        grpc.get("nodePort") in container_ports,
        f"kind: inference grpc nodePort {grpc.get('nodePort')} is not mapped by {kind_config} (maps {sorted(container_ports)})",
    )


def check_kind_config(path: Path) -> list[str]:
    errors = []
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if config.get("kind") != "Cluster" or not str(config.get("apiVersion", "")).startswith("kind.x-k8s.io/"):
        errors.append(f"{path}: not a kind Cluster config")
    roles = [n.get("role") for n in config.get("nodes") or []]
    if sorted(roles) != ["control-plane", "worker"]:
        errors.append(f"{path}: expected 1 control-plane + 1 worker, got {roles}")
    mappings = [m for n in config.get("nodes") or [] for m in n.get("extraPortMappings") or []]
    if not any(m.get("containerPort") == 30053 and m.get("hostPort") == 50053 for m in mappings):
        errors.append(f"{path}: no extraPortMapping containerPort 30053 -> hostPort 50053")
    return errors


def validate(path: Path, kind_config: Path | None) -> list[str]:
    try:
        objects = load_documents(path)
    except (OSError, yaml.YAMLError) as exc:
        return [f"cannot read {path}: {exc}"]
    r = Render(path, objects)
    if not r.check(bool(objects), "no objects rendered"):
        return r.errors
    check_structure(r)
    env = environment_of(r)
    namespace = check_namespaces(r, env)
    check_configmap(r, env)
    check_volumes(r, namespace)
    check_services(r, env, namespace)
    check_stateful_backends(r)
    check_topics_job(r)
    check_pod_security(r)
    check_network_policies(r)
    check_production_secrets(r, env)
    check_kind(r, env, kind_config)
    if not r.errors:
        kinds: dict[str, int] = {}
        for obj in objects:
            kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        print(f"ok   {path} (environment {env or 'base'}, namespace {namespace or '-'}): {summary}")
    return r.errors


# --- blue/green helpers ---------------------------------------------------------------------


def extract(spec: str, path: Path) -> int:
    kind, _, name = spec.partition("/")
    matches = [o for o in load_documents(path) if o.get("kind") == kind and dig(o, "metadata", "name") == name]
    if len(matches) != 1:
        sys.stderr.write(f"check_k8s: expected exactly one {kind}/{name} in {path}, found {len(matches)}\n")
        return 1
    sys.stdout.write(yaml.safe_dump(matches[0], sort_keys=False))
    return 0


def expect_slot(path: Path, slot: str, previous: str | None) -> int:
    errors = []
    try:
        objects = load_documents(path)
    except (OSError, yaml.YAMLError) as exc:
        objects, errors = [], [f"cannot read {path}: {exc}"]
    services = [o for o in objects if o.get("kind") == "Service" and dig(o, "metadata", "name") == "inference"]
    if len(services) != 1:
        errors.append(f"expected exactly one Service inference, found {len(services)}")
    else:
        svc = services[0]
        selector = dig(svc, "spec", "selector", default={}) or {}
        if selector.get("slot") != slot:
            errors.append(f"selector.slot is {selector.get('slot')!r}, expected {slot!r}")
        if selector.get(NAME_LABEL) != "inference":
            errors.append(f"selector lost {NAME_LABEL}=inference: {selector}")
        if set(selector) != {NAME_LABEL, "slot"}:
            errors.append(f"selector should be exactly {{{NAME_LABEL}, slot}}, got {selector}")
        if previous is not None:
            got = dig(svc, "metadata", "annotations", PREVIOUS_SLOT_ANNOTATION)
            if got != previous:
                errors.append(f"annotation {PREVIOUS_SLOT_ANNOTATION} is {got!r}, expected {previous!r}")
    for e in errors:
        print(f"FAIL {path}: {e}")
    if not errors:
        print(f"ok   {path}: Service inference selects slot {slot}" + (f" (previous: {previous})" if previous else ""))
    return 1 if errors else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, help="rendered manifest files")
    parser.add_argument("--kind-config", type=Path, help="deploy/kind-config.yaml, to cross-check the kind overlay")
    parser.add_argument("--extract", metavar="KIND/NAME", help="print one object of the (single) file as YAML")
    parser.add_argument("--expect-slot", choices=SLOTS, help="check the inference Service in the (single) file")
    parser.add_argument("--expect-previous", choices=SLOTS, help="with --expect-slot: expected previous slot")
    args = parser.parse_args(argv)

    if args.extract or args.expect_slot:
        if len(args.files) != 1:
            parser.error("--extract/--expect-slot take exactly one file")
        if args.extract:
            return extract(args.extract, args.files[0])
        return expect_slot(args.files[0], args.expect_slot, args.expect_previous)

    failures = 0
    if args.kind_config is not None:
        for e in check_kind_config(args.kind_config):
            print(f"FAIL {e}")
            failures += 1
    for path in args.files:
        for e in validate(path, args.kind_config):
            print(f"FAIL {path}: {e}")
            failures += 1
    if failures:
        print(f"\n{failures} check(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
