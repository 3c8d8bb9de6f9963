"""Istio's part, played offline.

* manifests: load istio/*.yaml, render the kustomization (`kubectl kustomize`, when kubectl is
  there), validate with Istio's CRD schemas (@kubernetes-models/istio under Node, see
  tests/istio/validate.mjs), and check the WasmPlugin CRD's CEL rules, which no JSON schema
  carries;
* the image: open an OCI image the way Istio's image fetcher does (istio/istio
  pkg/wasm/imagefetcher.go): manifest -> layers -> the last layer's tar.gz -> `plugin.wasm`,
  from a layout directory, an oci-archive tarball or a registry over HTTP;
* the proxy: the Envoy config istiod would generate for a WasmPlugin (istio/istio
  pilot/pkg/model/extensions.go: filter name `<namespace>.<name>`, root_id = pluginName,
  configuration = pluginConfig as a JSON string, failStrategy -> failure_policy) with routes
  taken from the VirtualService (header exact match -> subset, one cluster per subset).

Written from Istio's behaviour, not from the oci module, so the two check each other.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ruamel.yaml import YAML

from . import envoy_config
from .repo import ISTIO_DIR as ISTIO
from .repo import REPO

VALIDATOR_DIR = REPO / "tests" / "istio"
VALIDATOR = VALIDATOR_DIR / "validate.mjs"

# ------------------------------------------------------------------------------ manifests


def yaml_docs(text: str) -> list[Any]:
    return [d for d in YAML(typ="safe", pure=True).load_all(text) if d is not None]


def manifest_files(root: Path = ISTIO) -> list[Path]:
    """Every Kubernetes manifest under istio/ (kustomization files are kustomize's, not the API's)."""
    return sorted(p for p in root.rglob("*.yaml") if p.name != "kustomization.yaml")


def file_docs(root: Path = ISTIO) -> list[tuple[str, dict]]:
    out = []
    for p in manifest_files(root):
        for i, d in enumerate(yaml_docs(p.read_text(encoding="utf-8"))):
            out.append((f"{p.relative_to(REPO)}#{i}", d))
    return out


def kubectl() -> str | None:
    return shutil.which("kubectl")


def kustomize(path: Path) -> list[dict]:
    """`kubectl kustomize PATH` (kustomize built into kubectl; offline)."""
    binary = kubectl()
    if binary is None:
        raise FileNotFoundError("kubectl")
    r = subprocess.run([binary, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed:\n{r.stderr}")
    return yaml_docs(r.stdout)


def validator_ready() -> bool:
    return (VALIDATOR_DIR / "node_modules" / "@kubernetes-models" / "istio" / "package.json").is_file()


def validate(items: list[tuple[str, dict]]) -> dict[str, list[str]]:
    """source -> schema errors (empty list: valid), from Istio's CRD schemas under Node."""
    node = shutil.which("node")
    if node is None:
        raise AssertionError("node is not installed (Node 20+)")
    payload = json.dumps([{"source": s, "doc": d} for s, d in items])
    r = subprocess.run([node, str(VALIDATOR)], input=payload, capture_output=True, text=True,
                       timeout=60, cwd=REPO)
    if r.returncode != 0:
        raise AssertionError(f"validate.mjs failed ({r.returncode}):\n{r.stderr}")
    return {res["source"]: res["errors"] for res in json.loads(r.stdout)}


URL_SCHEMES = ("", "http", "https", "oci", "file")


def url_scheme(url: str) -> str | None:
    """The scheme as Go's url.Parse would see it ('' for none), None if not a URL at all."""
    if not url or any(c.isspace() for c in url):
        return None
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", url)
    return m.group(1).lower() if m else ""


def cel_errors(doc: dict) -> list[str]:
    """The WasmPlugin CRD's CEL rules (x-kubernetes-validations), which the JSON schemas cannot
    express. (sha256 is optional for every url scheme: neither the CRD, nor Istio's validation,
    nor its module cache require it, as read in Istio 1.30.3.)"""
    if doc.get("kind") != "WasmPlugin":
        return []
    spec = doc.get("spec") or {}
    errors = []
    if sum(k in spec for k in ("selector", "targetRef", "targetRefs")) > 1:
        errors.append("only one of targetRefs or selector can be set")
    url = spec.get("url")
    if isinstance(url, str):
        scheme = url_scheme(url)
        if scheme is None or scheme not in URL_SCHEMES:
            errors.append("url must have schema one of [http, https, file, oci]")
    return errors


def find(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]
    if len(found) != 1:
        raise AssertionError(f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0]


# ---------------------------------------------------------------------- OCI, like Istio

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MT_WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"


class FetchError(Exception):
    pass


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_digest(what: str, data: bytes, desc: dict) -> None:
    want = desc.get("digest", "")
    if want != f"sha256:{sha256_hex(data)}":
        raise FetchError(f"{what}: content digest sha256:{sha256_hex(data)} != descriptor {want}")
    if "size" in desc and desc["size"] != len(data):
        raise FetchError(f"{what}: size {len(data)} != descriptor {desc['size']}")


class Layout:
    """An OCI image layout, from a directory or an oci-archive tarball."""

    def __init__(self, files: Callable[[str], bytes]):
        self._read = files

    @classmethod
    def directory(cls, path: Path) -> Layout:
        return cls(lambda rel: (Path(path) / rel).read_bytes())

    @classmethod
    def archive(cls, path: Path) -> Layout:
        members: dict[str, bytes] = {}
        with tarfile.open(path, "r:") as tar:
            for m in tar.getmembers():
                if m.isfile():
                    f = tar.extractfile(m)
                    assert f is not None
                    members[m.name.removeprefix("./")] = f.read()
        return cls(lambda rel: members[rel])

    def manifest(self, tag: str) -> bytes:
        layout = json.loads(self._read("oci-layout"))
        if layout.get("imageLayoutVersion") != "1.0.0":
            raise FetchError(f"oci-layout: imageLayoutVersion {layout.get('imageLayoutVersion')!r}")
        index = json.loads(self._read("index.json"))
        found = [m for m in index.get("manifests", [])
                 if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
        if len(found) != 1:
            raise FetchError(f"index.json: {len(found)} manifests tagged {tag!r}")
        data = self.blob(found[0]["digest"])
        _check_digest("manifest", data, found[0])
        return data

    def blob(self, digest: str) -> bytes:
        algo, _, hexd = digest.partition(":")
        return self._read(f"blobs/{algo}/{hexd}")


class Registry:
    """A registry over plain HTTP (the test registry on loopback), read like go-containerregistry."""

    ACCEPT = ", ".join([MT_OCI_MANIFEST, MT_DOCKER_MANIFEST, MT_OCI_INDEX,
                        "application/vnd.docker.distribution.manifest.list.v2+json"])

    def __init__(self, host: str, port: int, repository: str):
        self.host, self.port, self.repository = host, port, repository

    def _get(self, path: str, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request("GET", path, headers={"accept": accept} if accept else {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def manifest(self, tag: str) -> bytes:
        status, headers, body = self._get(f"/v2/{self.repository}/manifests/{tag}", self.ACCEPT)
        if status != 200:
            raise FetchError(f"GET manifest {tag}: HTTP {status}")
        served = headers.get("docker-content-digest")
        if served and served != f"sha256:{sha256_hex(body)}":
            raise FetchError(f"registry digest {served} != content digest")
        return body

    def blob(self, digest: str) -> bytes:
        status, _, body = self._get(f"/v2/{self.repository}/blobs/{digest}")
        if status != 200:
            raise FetchError(f"GET blob {digest}: HTTP {status}")
        return body


@dataclass
class Fetched:
    manifest_digest: str  # hex, what Istio compares WasmPlugin spec.sha256 with
    wasm: bytes
    variant: str  # "compat" (tar.gz with plugin.wasm) or "oci" (raw wasm layer)


def _plugin_wasm_from_targz(blob: bytes) -> bytes:
    """imagefetcher.go extractWasmPluginBinary: the first entry whose base name is plugin.wasm."""
    try:
        raw = gzip.decompress(blob)
    except OSError as e:
        raise FetchError(f"layer is not gzip: {e}") from e
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        for m in tar:
            if Path(m.name).name == "plugin.wasm":
                f = tar.extractfile(m)
                if f is None:
                    raise FetchError("plugin.wasm is not a regular file")
                return f.read()
    raise FetchError("plugin.wasm not found in the archive")


def fetch_like_istio(source: Layout | Registry, tag: str) -> Fetched:
    """Istio's ImageFetcher.PrepareFetch + binaryFetcher, step by step."""
    manifest_bytes = source.manifest(tag)
    digest = sha256_hex(manifest_bytes)  # img.Digest(): the manifest as served
    manifest = json.loads(manifest_bytes)
    media_type = manifest.get("mediaType", "")
    if media_type not in ("", MT_OCI_MANIFEST, MT_DOCKER_MANIFEST):
        raise FetchError(f"tag {tag} is a {media_type}, not an image manifest")
    config = source.blob(manifest["config"]["digest"])
    _check_digest("config", config, manifest["config"])
    layers = manifest.get("layers") or []
    blobs = []
    for i, desc in enumerate(layers):
        data = source.blob(desc["digest"])
        _check_digest(f"layer {i}", data, desc)
        blobs.append(data)
    if not layers:
        raise FetchError("number of layers must be greater than zero")
    last_type = layers[-1]["mediaType"]
    if media_type == MT_DOCKER_MANIFEST:
        if last_type != MT_DOCKER_LAYER:
            raise FetchError(f"invalid media type {last_type} (expect {MT_DOCKER_LAYER})")
        wasm, variant = _plugin_wasm_from_targz(blobs[-1]), "compat"
    elif last_type == MT_OCI_LAYER:  # the compat variant, tried first
        wasm, variant = _plugin_wasm_from_targz(blobs[-1]), "compat"
    else:  # the oci variant: exactly two layers, one of them the raw module
        if len(layers) != 2:
            raise FetchError(f"number of layers must be 2 but got {len(layers)}")
        raw = [b for d, b in zip(layers, blobs) if d["mediaType"] == MT_WASM_LAYER]
        if not raw:
            raise FetchError(f"could not find the layer of type {MT_WASM_LAYER}")
        wasm, variant = raw[0], "oci"
    if len(wasm) < 8 or wasm[:4] != b"\0asm":  # cache.go isValidWasmBinary
        raise FetchError("fetched Wasm binary is invalid")
    return Fetched(digest, wasm, variant)


# ------------------------------------------------------------------ the proxy istiod builds

FAILURE_POLICY = {"FAIL_OPEN": "FAIL_OPEN", "FAIL_CLOSE": "FAIL_CLOSED", "FAIL_RELOAD": "FAIL_RELOAD"}


def routes_from_virtualservice(vs: dict) -> list[dict]:
    """Envoy routes for the VirtualService's http routes (exact header matches only); the
    cluster is the destination's subset."""
    routes = []
    for http_route in vs["spec"]["http"]:
        dests = http_route["route"]
        if len(dests) != 1 or "subset" not in dests[0]["destination"]:
            raise AssertionError(f"route {http_route.get('name')}: expected one destination with a subset")
        cluster = dests[0]["destination"]["subset"]
        matches = http_route.get("match") or [{}]
        for m in matches:
            if set(m) - {"headers"}:
                raise AssertionError(f"unsupported match {m}")
            headers = []
            for name, sm in (m.get("headers") or {}).items():
                if set(sm) != {"exact"}:
                    raise AssertionError(f"unsupported header match {name}: {sm}")
                headers.append({"name": name, "string_match": {"exact": sm["exact"]}})
            match: dict[str, Any] = {"prefix": "/"}
            if headers:
                match["headers"] = headers
            routes.append({"match": match, "route": {"cluster": cluster}})
    return routes


def envoy_config_for(wasm_plugin: dict, virtual_service: dict, *, wasm: Path,
                     upstream_ports: dict[str, int], base: dict | None = None) -> dict:
    """envoy/envoy.yaml rendered for loopback, with the Wasm filter configured the way istiod
    configures a WasmPlugin and the routes of the VirtualService."""
    spec = wasm_plugin["spec"]
    cfg = envoy_config.render_local(wasm=wasm, upstream_ports=upstream_ports,
                                    config=spec.get("pluginConfig") or {}, base=base)
    wf = envoy_config.wasm_filter(cfg)["typed_config"]["config"]
    meta = wasm_plugin["metadata"]
    wf["name"] = f"{meta['namespace']}.{meta['name']}"
    wf["root_id"] = spec.get("pluginName", "")
    wf["vm_config"].pop("vm_id", None)  # istiod sets none
    if spec.get("failStrategy"):
        wf["failure_policy"] = FAILURE_POLICY[spec["failStrategy"]]
    wanted = {r["route"]["cluster"] for r in routes_from_virtualservice(virtual_service)}
    if not wanted <= set(upstream_ports):
        raise AssertionError(f"subsets {sorted(wanted)} need upstreams, have {sorted(upstream_ports)}")
    envoy_config.routes(cfg)[:] = routes_from_virtualservice(virtual_service)
    return cfg
