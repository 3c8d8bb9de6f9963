"""Package the filter as an OCI image Istio can pull, without a Docker engine (stdlib only).

  python -m traffic_color_harness.oci build --wasm target/traffic_color.wasm \\
      [--out target/oci] [--pin istio/image.yaml] [--registry ghcr.io/acme]
  (or: make oci [REGISTRY=ghcr.io/acme])

Writes
  target/oci/layout/                    an OCI image layout (oci-layout, index.json, blobs/sha256/...)
                                        with one image tagged with the crate version
  target/oci/traffic-color-VERSION.oci.tar  the same layout as one tar file (an "oci-archive")
  target/oci/image.json                 the digests, for scripts

Format: the "compat" variant of the Wasm image spec that Istio's image fetcher reads first
(istio/istio pkg/wasm/imagefetcher.go, extractOCIStandardImage): a plain OCI image whose last
(here: only) layer is `application/vnd.oci.image.layer.v1.tar+gzip` holding a file named
`plugin.wasm`. It is an ordinary image, so every registry and copy tool accepts it; the
artifact variant (`application/vnd.module.wasm.content.layer.v1+wasm`, exactly two layers) is
also read by Istio but some registries refuse unknown media types. See istio/README.md.

Reproducible: every timestamp is 0, owners are 0/root, JSON is written in a fixed order and
gzip carries no name or time, so the same .wasm gives the same digests (given the same zlib,
which this prints).

The digest to pin: for an `oci://` URL, Istio compares WasmPlugin `spec.sha256` with the
digest of the image *manifest* (cache.go: `dChecksum` is `img.Digest()`), not with the
module's sha256 (istio/istio#37565, fixed by #37566). `--pin` writes that digest, and the url
with the crate version as tag, into istio/image.yaml, the kustomize patch istio/ applies to
every WasmPlugin.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import shutil
import sys
import tarfile
import zlib
from pathlib import Path

from .repo import REPO, crate_version

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
WASM_FILE = "plugin.wasm"  # the name Istio's fetcher looks for (compared by basename)
REF_NAME = "org.opencontainers.image.ref.name"
MODULE_SHA_ANNOTATION = "io.github.traffic-color.module.sha256"
DEFAULT_REGISTRY = "registry.example.com"  # placeholder: `make oci REGISTRY=...` replaces it


class OciError(Exception):
    pass


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(obj: object) -> bytes:
    """Compact JSON in the order the dicts were built (deterministic)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _tar_member(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.type = tarfile.REGTYPE
    return info, data


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    # USTAR: no PAX headers (those could carry times); every name here is short and ASCII.
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _dir_member(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info, None


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    # filename="" and mtime=0: no name, no time in the gzip header.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def _descriptor(media_type: str, data: bytes, annotations: dict[str, str] | None = None) -> dict:
    d = {"mediaType": media_type, "digest": f"sha256:{sha256(data)}", "size": len(data)}
    if annotations:
        d["annotations"] = annotations
    return d


def image_blobs(wasm: bytes, version: str, name: str = "traffic-color") -> dict:
    """The blobs of the image: layer, config, manifest (bytes) and their descriptors."""
    if wasm[:4] != b"\0asm":
        raise OciError("not a WebAssembly module (no \\0asm magic)")
    layer_tar = _tar([_tar_member(WASM_FILE, wasm)])
    layer = _gzip(layer_tar)
    config = canonical_json({
        # The module is not a native program: architecture/os name what it is (Go's names for
        # a WASI preview 1 target). No fetcher checks them for a single-image reference.
        "architecture": "wasm",
        "os": "wasip1",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{sha256(layer_tar)}"]},
        "history": [{"created_by": f"traffic_color_harness.oci: {WASM_FILE} ({name} {version})"}],
    })
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": _descriptor(MT_CONFIG, config),
        "layers": [_descriptor(MT_LAYER, layer)],
        "annotations": {
            "org.opencontainers.image.title": name,
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.description":
                f"{name} Proxy-Wasm filter; {WASM_FILE} in the layer (Istio WasmPlugin compat image)",
            MODULE_SHA_ANNOTATION: sha256(wasm),
        },
    })
    return {"layer": layer, "config": config, "manifest": manifest,
            "manifest_digest": sha256(manifest), "module_sha256": sha256(wasm),
            "module_size": len(wasm)}


def layout_files(blobs: dict, tag: str) -> dict[str, bytes]:
    """Path (relative to the layout root) -> bytes, for an OCI image layout with one image."""
    index = canonical_json({
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [_descriptor(MT_MANIFEST, blobs["manifest"], {REF_NAME: tag})],
    })
    files = {"oci-layout": canonical_json({"imageLayoutVersion": "1.0.0"}), "index.json": index}
    for key in ("config", "layer", "manifest"):
        files[f"blobs/sha256/{sha256(blobs[key])}"] = blobs[key]
    return files


def layout_tar(files: dict[str, bytes]) -> bytes:
    """The layout as an oci-archive: the layout's files at the tar root, sorted, times 0."""
    members: list[tuple[tarfile.TarInfo, bytes | None]] = [_dir_member("blobs/"),
                                                           _dir_member("blobs/sha256/")]
    for path in sorted(files):
        members.append(_tar_member(path, files[path]))
    return _tar(members)


def write_layout(files: dict[str, bytes], layout_dir: Path) -> None:
    if layout_dir.exists():
        shutil.rmtree(layout_dir)
    for rel, data in files.items():
        p = layout_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


# --------------------------------------------------------------------------------- pinning

_URL_LINE = re.compile(r'^(?P<indent>\s*)url:\s*(?P<q>["\']?)(?P<url>[^"\'\s#]+)(?P=q)(?P<rest>\s*(#.*)?)$')
_SHA_LINE = re.compile(r'^(?P<indent>\s*)sha256:\s*(?P<q>["\']?)(?P<sha>[^"\'\s#]*)(?P=q)(?P<rest>\s*(#.*)?)$')


def image_url(registry: str, name: str, tag: str) -> str:
    registry = registry.strip().removeprefix("oci://").rstrip("/")
    if not registry:
        raise OciError("empty registry")
    return f"oci://{registry}/{name}:{tag}"


def retag(url: str, tag: str) -> str:
    """`oci://host/path/name:old` or `...@sha256:..` -> `oci://host/path/name:tag`."""
    base = url.split("@", 1)[0]
    last = base.rsplit("/", 1)
    if len(last) == 2 and ":" in last[1]:
        base = last[0] + "/" + last[1].split(":", 1)[0]
    return f"{base}:{tag}"


def pin(path: Path, digest: str, tag: str, name: str, registry: str | None) -> str:
    """Rewrite `url:` and `sha256:` in the patch file (comments and layout kept). Returns the url."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    url_done = sha_done = False
    new_url = ""
    out = []
    for line in lines:
        body = line.rstrip("\n")
        m = _URL_LINE.match(body)
        if m and not url_done:
            new_url = image_url(registry, name, tag) if registry else retag(m["url"], tag)
            out.append(f'{m["indent"]}url: {new_url}{m["rest"]}\n')
            url_done = True
            continue
        m = _SHA_LINE.match(body)
        if m and not sha_done:
            out.append(f'{m["indent"]}sha256: "{digest}"{m["rest"]}\n')
            sha_done = True
            continue
        out.append(line)
    if not (url_done and sha_done):
        raise OciError(f"{path}: expected a `url:` and a `sha256:` line to rewrite")
    path.write_text("".join(out), encoding="utf-8")
    return new_url


# ------------------------------------------------------------------------------------ main


def build(wasm_path: Path, out: Path, version: str, name: str) -> dict:
    wasm = Path(wasm_path).read_bytes()
    blobs = image_blobs(wasm, version, name)
    files = layout_files(blobs, version)
    out.mkdir(parents=True, exist_ok=True)
    layout_dir = out / "layout"
    write_layout(files, layout_dir)
    archive = out / f"{name}-{version}.oci.tar"
    archive.write_bytes(layout_tar(files))
    info = {
        "name": name,
        "tag": version,
        "layout": layout_dir.name,
        "archive": archive.name,
        "manifest_digest": f"sha256:{blobs['manifest_digest']}",
        "module_sha256": blobs["module_sha256"],
        "module_size": blobs["module_size"],
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
    }
    (out / "image.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def _rel(p: Path | str) -> str:
    p = Path(p).resolve()
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the OCI layout + archive from a .wasm")
    b.add_argument("--wasm", required=True, type=Path)
    b.add_argument("--out", type=Path, default=REPO / "target" / "oci")
    b.add_argument("--version", default=None, help="image tag (default: the crate version)")
    b.add_argument("--name", default="traffic-color", help="repository name in the registry")
    b.add_argument("--pin", type=Path, default=None,
                   help="kustomize patch whose url/sha256 to rewrite (istio/image.yaml)")
    b.add_argument("--registry", default=None,
                   help="registry/path to put in the pinned url (default: keep the file's)")
    args = ap.parse_args(argv)

    version = args.version or crate_version()
    try:
        info = build(args.wasm, args.out, version, args.name)
    except (OSError, OciError) as e:
        print(f"oci: {e}", file=sys.stderr)
        return 1
    digest = info["manifest_digest"].removeprefix("sha256:")
    layout_dir = _rel(args.out / info["layout"])
    print(f"OCI layout   {layout_dir}  (tag {version})")
    print(f"OCI archive  {_rel(args.out / info['archive'])}")
    print(f"manifest     {info['manifest_digest']}   <- WasmPlugin spec.sha256 (Istio checks the manifest digest)")
    print(f"plugin.wasm  sha256:{info['module_sha256']}  ({info['module_size']} bytes; zlib {info['zlib']})")
    url = None
    if args.pin:
        try:
            url = pin(args.pin, digest, version, args.name, args.registry)
        except (OSError, OciError) as e:
            print(f"oci: {e}", file=sys.stderr)
            return 1
        print(f"pinned       {_rel(args.pin)}: url {url}, sha256 {digest}")
    target = (url or image_url(args.registry or DEFAULT_REGISTRY, args.name, version)).removeprefix("oci://")
    print(f"push with    skopeo copy oci:{layout_dir}:{version} docker://{target}")
    if DEFAULT_REGISTRY in target:
        print(f"             ({DEFAULT_REGISTRY} is a placeholder: make oci REGISTRY=<your registry>/<path>)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
