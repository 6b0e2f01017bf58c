#!/usr/bin/env python3
"""A local fake of the Hugging Face hub's file-resolution endpoints, as huggingface_hub sees them.

Serves the tree <root>/<org>/<name>/<path> as file <path> of model repo org/name (or <root>/<name>
for a repo without an org). Stdlib only; HTTP/1.1 with keep-alive.

  HEAD/GET /{repo}/resolve/{revision}/{path}   revision: "main" or the repo's commit
    small file (<= --lfs-threshold, 1 MiB):  200 with ETag "<git blob sha1>", X-Repo-Commit,
                                             Content-Length (and the body on GET)
    large file ("LFS"):  302 to http://<--cdn-host>:<port>/cdn/<sha256> with X-Repo-Commit,
                         X-Linked-Etag "<sha256>", X-Linked-Size and the ETag of the LFS pointer
    missing file:        404, X-Error-Code: EntryNotFound (with X-Repo-Commit)
    missing repo:        404, X-Error-Code: RepositoryNotFound
    unknown revision:    404, X-Error-Code: RevisionNotFound
    --token T:           401 unless "Authorization: Bearer T" (like a private repo)
    --rename old=new:    307 with the relative Location /new/resolve/... (a renamed repo)
  HEAD/GET /cdn/<sha256>   the blob; Range "bytes=N-" / "bytes=N-M" gives 206 with Content-Range,
                           416 past the end. Never needs the token (the real CDN uses signed URLs).

The commit of a repo is the sha1 of its id, so it is stable across runs.

Test knobs (not recorded in the request log):
  GET  /_fake/requests   JSON list of {"method", "path", "range", "authorization"} seen so far
  POST /_fake/reset      clears that list
  POST /_fake/config?cut_after=N&chunk_delay_ms=M&ignore_range=1
                         cut the connection after N body bytes of the next download (a GET of
                         /cdn or of a small file); sleep M ms between 64 KiB chunks of every body;
                         answer Range requests with the whole file (200), as some proxies do

Use as a script: `python3 fake_hf_hub.py --root DIR --port 0` prints the port on its first line.
Use from Python: `hub = FakeHub(root).start(); hub.url; hub.requests; hub.stop()`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

CHUNK = 64 * 1024


def repo_commit(repo_id: str) -> str:
    return hashlib.sha1(repo_id.encode()).hexdigest()


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n").encode()


class HubState:
    """Everything the handler threads share; guarded by `lock`."""

    def __init__(self, root: Path, token: str | None, cdn_host: str, lfs_threshold: int,
                 renames: dict[str, str], cut_after: int | None) -> None:
        self.root = root
        self.token = token
        self.cdn_host = cdn_host
        self.lfs_threshold = lfs_threshold
        self.renames = renames
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.cut_after = cut_after
        self.chunk_delay = 0.0
        self.ignore_range = False
        self.blobs: dict[str, Path] = {}  # sha256 -> file, filled as files are resolved

    def take_cut(self) -> int | None:
        with self.lock:
            cut, self.cut_after = self.cut_after, None
            return cut

    def sha256_of(self, path: Path) -> str:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        with self.lock:
            self.blobs[digest] = path
        return digest

    def blob(self, digest: str) -> Path | None:
        with self.lock:
            path = self.blobs.get(digest)
        if path is None:  # not resolved yet in this run: look it up
            for candidate in self.root.rglob("*"):
                if candidate.is_file() and self.sha256_of(candidate) == digest:
                    return candidate
        return path


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeHfHub/1.0"
    state: HubState  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the request log
        pass

    # -- routing --------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.route(head=True)

    def do_GET(self) -> None:
        self.route(head=False)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if url.path == "/_fake/reset":
            with self.state.lock:
                self.state.requests.clear()
            return self.send_simple(204)
        if url.path == "/_fake/config":
            query = parse_qs(url.query)
            with self.state.lock:
                if "cut_after" in query:
                    self.state.cut_after = int(query["cut_after"][0])
                if "chunk_delay_ms" in query:
                    self.state.chunk_delay = int(query["chunk_delay_ms"][0]) / 1000
                if "ignore_range" in query:
                    self.state.ignore_range = query["ignore_range"][0] == "1"
            return self.send_simple(204)
        self.send_simple(404)

    def route(self, head: bool) -> None:
        url = urlsplit(self.path)
        if url.path == "/_fake/requests":
            with self.state.lock:
                body = json.dumps(self.state.requests).encode()
            return self.send_simple(200, body, "application/json", head)
        with self.state.lock:
            self.state.requests.append({
                "method": self.command,
                "path": url.path,
                "range": self.headers.get("Range"),
                "authorization": self.headers.get("Authorization"),
            })
        if url.path.startswith("/cdn/"):
            return self.serve_cdn(url.path[len("/cdn/"):], head)
        segments = url.path.split("/")[1:]
        if "resolve" not in segments:
            return self.send_simple(404)
        at = segments.index("resolve")
        if at == 0 or len(segments) < at + 3:
            return self.send_simple(404)
        repo_id = "/".join(unquote(s) for s in segments[:at])
        revision = unquote(segments[at + 1])
        filename = unquote("/".join(segments[at + 2:]))
        self.serve_resolve(repo_id, revision, filename, url.path, head)

    # -- /{repo}/resolve/{revision}/{path} -------------------------------------------------------

    def serve_resolve(self, repo_id: str, revision: str, filename: str, path: str, head: bool) -> None:
        state = self.state
        if state.token is not None and self.headers.get("Authorization") != f"Bearer {state.token}":
            return self.send_error_code(401, None, "Invalid credentials in Authorization header", head)
        if repo_id in state.renames:
            target = "/" + quote(state.renames[repo_id]) + path[len("/" + quote(repo_id)):]
            return self.send_simple(307, head=head, extra={"Location": target})
        repo_dir = state.root / repo_id
        if ".." in repo_id.split("/") or not repo_dir.is_dir():
            return self.send_error_code(404, "RepositoryNotFound", "Repository not found", head)
        commit = repo_commit(repo_id)
        if revision not in ("main", commit):
            return self.send_error_code(404, "RevisionNotFound", "Invalid rev id: " + revision, head)
        file = repo_dir / filename
        if ".." in filename.split("/") or not file.is_file():
            return self.send_error_code(404, "EntryNotFound", "Entry not found", head,
                                        {"X-Repo-Commit": commit})
        data_size = file.stat().st_size
        if data_size > state.lfs_threshold:
            digest = state.sha256_of(file)
            port = self.server.server_address[1]
            return self.send_simple(302, head=head, extra={
                "Location": f"http://{state.cdn_host}:{port}/cdn/{digest}",
                "X-Repo-Commit": commit,
                "X-Linked-Etag": f'"{digest}"',
                "X-Linked-Size": str(data_size),
                "ETag": f'"{git_blob_sha1(lfs_pointer(digest, data_size))}"',
            })
        data = file.read_bytes()
        headers = {"X-Repo-Commit": commit, "ETag": f'"{git_blob_sha1(data)}"'}
        self.send_body(data, 0, len(data), 200, headers, head)

    # -- /cdn/<sha256> ---------------------------------------------------------------------------

    def serve_cdn(self, digest: str, head: bool) -> None:
        file = self.state.blob(digest)
        if file is None:
            return self.send_simple(404)
        data = file.read_bytes()
        wanted = self.headers.get("Range")
        with self.state.lock:
            ignore_range = self.state.ignore_range
        if not wanted or ignore_range:
            return self.send_body(data, 0, len(data), 200, {}, head)
        try:
            unit, spec = wanted.split("=", 1)
            first_text, last_text = spec.split("-", 1)
            first = int(first_text)
            last = int(last_text) if last_text else len(data) - 1
            if unit.strip() != "bytes":
                raise ValueError(unit)
        except ValueError:
            return self.send_simple(400)
        if first >= len(data) or last < first:
            return self.send_simple(416, head=head, extra={"Content-Range": f"bytes */{len(data)}"})
        last = min(last, len(data) - 1)
        self.send_body(data, first, last + 1, 206,
                       {"Content-Range": f"bytes {first}-{last}/{len(data)}"}, head)

    # -- responses -------------------------------------------------------------------------------

    def send_body(self, data: bytes, start: int, end: int, status: int, headers: dict[str, str],
                  head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(end - start))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if head:
            return
        cut = self.state.take_cut()
        stop = end if cut is None else min(end, start + cut)
        with self.state.lock:
            delay = self.state.chunk_delay
        for offset in range(start, stop, CHUNK):
            self.wfile.write(data[offset:min(offset + CHUNK, stop)])
            self.wfile.flush()
            if delay:
                time.sleep(delay)
        if cut is not None:
            # An abrupt end mid-body, as when a connection drops.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def send_simple(self, status: int, body: bytes = b"", content_type: str = "text/plain",
                    head: bool = False, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", content_type)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def send_error_code(self, status: int, code: str | None, message: str, head: bool,
                        extra: dict[str, str] | None = None) -> None:
        headers = dict(extra or {})
        if code:
            headers["X-Error-Code"] = code
        headers["X-Error-Message"] = message
        self.send_simple(status, json.dumps({"error": message}).encode(), "application/json", head, headers)


class QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-body (a download stopped on purpose) is normal here, not an error."""

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class FakeHub:
    """A fake hub on 127.0.0.1, serving `root`, in a background thread."""

    def __init__(self, root: str | os.PathLike, *, port: int = 0, token: str | None = None,
                 cdn_host: str = "localhost", lfs_threshold: int = 1024 * 1024,
                 renames: dict[str, str] | None = None, cut_after: int | None = None) -> None:
        self.state = HubState(Path(root), token, cdn_host, lfs_threshold, renames or {}, cut_after)
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.server = QuietServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.requests)

    def start(self) -> "FakeHub":
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="directory of <org>/<name>/<files>")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", help="require Authorization: Bearer TOKEN on resolve")
    parser.add_argument("--cdn-host", default="localhost",
                        help="host name in LFS redirects; differs from 127.0.0.1 so clients must drop the token")
    parser.add_argument("--lfs-threshold", type=int, default=1024 * 1024,
                        help="files larger than this many bytes are served as LFS files")
    parser.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                        help="answer OLD repo's resolve URLs with a relative redirect to NEW")
    parser.add_argument("--cut-after", type=int, help="cut the first download after this many bytes")
    args = parser.parse_args()
    renames = dict(item.split("=", 1) for item in args.rename)
    hub = FakeHub(args.root, port=args.port, token=args.token, cdn_host=args.cdn_host,
                  lfs_threshold=args.lfs_threshold, renames=renames, cut_after=args.cut_after)
    print(hub.port, flush=True)
    try:
        hub.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        hub.server.server_close()


if __name__ == "__main__":
    sys.exit(main())
