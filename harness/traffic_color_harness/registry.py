"""A minimal OCI distribution registry (push and pull of one repository's blobs and manifests),
in memory, on 127.0.0.1, plain HTTP, no auth. Just enough for `skopeo copy ... docker://`
(and crane / oras) to push, and for a client to pull the way Istio's fetcher does
(GET /v2/<name>/manifests/<tag>, then GET /v2/<name>/blobs/<digest>).

    python -m traffic_color_harness.registry --port 0 --port-file /tmp/reg.port

Not a conformance-complete registry: no cross-repo mounts, no deletes, no referrers.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

NAME = r"(?P<name>[a-z0-9]+(?:[._/-][a-z0-9]+)*)"
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


class Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], tuple[str, bytes]] = {}  # (name, ref) -> (type, bytes)
        self.uploads: dict[str, bytearray] = {}


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_handler(store: Store):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet; the test reads results, not logs
            pass

        # -------------------------------------------------------------- helpers
        def _body(self) -> bytes:
            n = int(self.headers.get("content-length") or 0)
            return self.rfile.read(n) if n else b""

        def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None,
                  head: bool = False) -> None:
            self.send_response(code)
            hs = {"docker-distribution-api-version": "registry/2.0", **(headers or {})}
            if "content-length" not in {k.lower() for k in hs}:
                hs["content-length"] = str(len(body))
            for k, v in hs.items():
                self.send_header(k, v)
            self.end_headers()
            if body and not head:
                self.wfile.write(body)

        def _route(self):
            path = urlsplit(self.path).path
            for pat, kind in ((rf"^/v2/{NAME}/blobs/uploads/(?P<id>[0-9a-f-]+)$", "upload"),
                              (rf"^/v2/{NAME}/blobs/uploads/$", "uploads"),
                              (rf"^/v2/{NAME}/blobs/(?P<ref>sha256:[0-9a-f]{{64}})$", "blob"),
                              (rf"^/v2/{NAME}/manifests/(?P<ref>[^/]+)$", "manifest")):
                m = re.match(pat, path)
                if m:
                    return kind, m.groupdict()
            if path in ("/v2", "/v2/"):
                return "base", {}
            return None, {}

        # -------------------------------------------------------------- verbs
        def do_GET(self, head: bool = False):
            kind, g = self._route()
            if kind == "base":
                return self._send(200, b"{}", {"content-type": "application/json"}, head)
            if kind == "blob":
                with store.lock:
                    data = store.blobs.get(g["ref"])
                if data is None:
                    return self._send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}', head=head)
                return self._send(200, data, {"docker-content-digest": g["ref"],
                                              "content-type": "application/octet-stream"}, head)
            if kind == "manifest":
                with store.lock:
                    found = store.manifests.get((g["name"], g["ref"]))
                if found is None:
                    return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', head=head)
                mt, data = found
                return self._send(200, data, {"docker-content-digest": digest(data),
                                              "content-type": mt}, head)
            return self._send(404)

        def do_HEAD(self):
            self.do_GET(head=True)

        def do_POST(self):
            kind, g = self._route()
            self._body()
            if kind != "uploads":
                return self._send(404)
            # A `?mount=` request (cross-repository mount) is not supported: answering 202 with
            # a new upload tells the client to upload the blob instead, as the spec allows.
            uid = str(uuid.uuid4())
            with store.lock:
                store.uploads[uid] = bytearray()
            return self._send(202, b"", {"location": f"/v2/{g['name']}/blobs/uploads/{uid}",
                                         "range": "0-0", "docker-upload-uuid": uid})

        def do_PATCH(self):
            kind, g = self._route()
            data = self._body()
            if kind != "upload" or g["id"] not in store.uploads:
                return self._send(404)
            with store.lock:
                buf = store.uploads[g["id"]]
                buf.extend(data)
                end = len(buf) - 1
            return self._send(202, b"", {"location": f"/v2/{g['name']}/blobs/uploads/{g['id']}",
                                         "range": f"0-{max(end, 0)}", "docker-upload-uuid": g["id"]})

        def do_PUT(self):
            kind, g = self._route()
            data = self._body()
            if kind == "upload":
                want = parse_qs(urlsplit(self.path).query).get("digest", [""])[0]
                with store.lock:
                    buf = store.uploads.pop(g["id"], None)
                    if buf is None:
                        return self._send(404)
                    buf.extend(data)
                    blob = bytes(buf)
                    if digest(blob) != want:
                        return self._send(400, b'{"errors":[{"code":"DIGEST_INVALID"}]}')
                    store.blobs[want] = blob
                return self._send(201, b"", {"location": f"/v2/{g['name']}/blobs/{want}",
                                             "docker-content-digest": want})
            if kind == "manifest":
                mt = (self.headers.get("content-type") or "").split(";")[0].strip()
                if mt not in MANIFEST_TYPES:
                    return self._send(400, b'{"errors":[{"code":"MANIFEST_INVALID"}]}')
                d = digest(data)
                with store.lock:
                    store.manifests[(g["name"], g["ref"])] = (mt, data)
                    store.manifests[(g["name"], d)] = (mt, data)
                return self._send(201, b"", {"location": f"/v2/{g['name']}/manifests/{d}",
                                             "docker-content-digest": d})
            return self._send(404)

    return Handler


def serve(port: int = 0) -> tuple[ThreadingHTTPServer, Store]:
    store = Store()
    srv = ThreadingHTTPServer(("127.0.0.1", port), make_handler(store))
    return srv, store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", type=Path)
    args = ap.parse_args()
    srv, _ = serve(args.port)
    if args.port_file:
        args.port_file.write_text(str(srv.server_address[1]))
    print(f"registry on 127.0.0.1:{srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
