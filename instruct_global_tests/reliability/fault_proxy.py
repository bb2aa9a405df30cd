"""A fault-injecting reverse proxy on 127.0.0.1 in front of any of the local protocol servers.

    with OpenAIServer() as upstream, FaultProxy(upstream.root_url, protocol="openai", seed=7) as proxy:
        llm = OpenAICompatibleLLM(base_url=f"{proxy.url}/v1", ...)   # the client talks to the proxy
        ...
        proxy.injected          # Counter: faults injected by kind
        proxy.survived()        # Counter: faults whose request later got a clean answer through

About ``rate`` of the requests fail, with a seeded mix of what providers and sites really do:
429 with Retry-After, 500, 529 (Anthropic "overloaded"), a timeout (the proxy sleeps past the
client's timeout and closes without answering), malformed JSON (a 200 whose body is cut inside
the JSON), a truncated answer (the full Content-Length promised, half the body sent, then FIN) and
a connection reset mid-body (half the body, then RST).

Whether an attempt fails, and how, is a pure function of (seed, request payload, how many times
that payload arrived before): the same run with the same seed meets the same faults whatever the
thread interleaving, and a payload fails at most ``max_faults_per_payload`` times in a row so a
client with that many retries always gets through. 429/500/529/timeouts are answered by the proxy
itself (the upstream never sees them: nothing is paid); malformed, truncated and reset answers are
the upstream's real answer spoiled on the way back (the upstream counted, i.e. billed, it).

A proxy with ``rate=0`` passes everything through (the fault-free reference run). Absolute upstream URLs in bodies and ``Location`` headers are rewritten to the proxy's, so the
links a sitemap or a batch object hands out lead back through the proxy.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import urlsplit

from instruct_global_tests.fixtures.local_server import LocalHTTPServer

Protocol = Literal["openai", "anthropic", "google", "corpus"]
FAULT_KINDS = ("rate_limit", "server_error", "overloaded", "timeout", "malformed", "truncated", "reset")
# answered by the proxy without asking the upstream
BEFORE_UPSTREAM = frozenset({"rate_limit", "server_error", "overloaded", "timeout"})
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "te",
               "trailer", "upgrade"}  # fmt: skip
_STATUS = {"rate_limit": 429, "server_error": 500, "overloaded": 529}


def error_body(protocol: Protocol, kind: str) -> tuple[bytes, str]:
    """The error body each protocol sends for an injected 429/500/529."""
    status = _STATUS[kind]
    message = {"rate_limit": "Rate limit reached for requests", "server_error": "The server had an error",
               "overloaded": "Overloaded"}[kind]  # fmt: skip
    if protocol == "openai":
        kind_type = {"rate_limit": "rate_limit_error", "server_error": "server_error", "overloaded": "server_error"}
        code = "rate_limit_exceeded" if kind == "rate_limit" else None
        payload: Any = {"error": {"message": message, "type": kind_type[kind], "param": None, "code": code}}
    elif protocol == "anthropic":
        kind_type = {"rate_limit": "rate_limit_error", "server_error": "api_error", "overloaded": "overloaded_error"}
        payload = {"type": "error", "error": {"type": kind_type[kind], "message": message}}
    elif protocol == "google":
        names = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 529: "UNAVAILABLE"}
        payload = {"error": {"code": status, "message": message, "status": names[status]}}
    else:
        return f"{status} {message}\n".encode(), "text/plain; charset=utf-8"
    return json.dumps(payload).encode(), "application/json"


class FaultProxy(LocalHTTPServer):
    def __init__(
        self,
        upstream: str,
        *,
        protocol: Protocol,
        seed: int,
        rate: float = 0.3,
        kinds: tuple[str, ...] = FAULT_KINDS,
        timeout_s: float = 2.0,
        max_faults_per_payload: int = 2,
        retry_after_choices: tuple[str, ...] = ("0", "1"),
        exempt: Callable[[str, str], bool] | None = None,
        port: int = 0,
    ) -> None:
        parts = urlsplit(upstream)
        self.upstream_root = f"{parts.scheme}://{parts.netloc}"
        self.upstream_host, self.upstream_port = parts.hostname or "127.0.0.1", int(parts.port or 80)
        self.protocol = protocol
        self.seed = seed
        self.rate = rate
        self.kinds = kinds
        self.timeout_s = timeout_s  # the client's timeout: a "timeout" fault sleeps past it
        self.max_faults_per_payload = max_faults_per_payload
        self.retry_after_choices = retry_after_choices
        self.exempt = exempt or (lambda method, path: False)
        # a fixed port lets two runs see the same URLs (document ids hash the URL)
        self.listen_port = port
        self.injected: Counter[str] = Counter()
        self.arrivals: Counter[str] = Counter()  # payload key -> requests seen
        self.delivered: Counter[str] = Counter()  # payload key -> clean answers that reached the client
        self.upstream_answers: Counter[str] = Counter()  # payload key -> 2xx answers the upstream gave
        self.faults: list[tuple[str, str]] = []  # (payload key, kind) in arrival order
        self._turn = 0  # the next fault kind, in turn
        self._lock = threading.Lock()
        # the gate (crash tests): after ``gate_after`` clean answers to requests ``gate_matches``, hold
        # every further matching request unanswered, so a kill lands at a known count
        self.gate_matches: Callable[[str, str, bytes], bool] | None = None
        self.gate_after = 0
        self.gate_passed = 0  # matching requests let through since the gate was set
        self.gate_answered = 0  # ... and answered
        self.gate_closed = threading.Event()
        self._gate_release = threading.Event()

    # ---- lifecycle -----------------------------------------------------------------------------
    def _build_httpd(self) -> ThreadingHTTPServer:
        return ThreadingHTTPServer(("127.0.0.1", self.listen_port), type("Handler", (_ProxyHandler,), {"proxy": self}))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- decisions -----------------------------------------------------------------------------
    @staticmethod
    def payload_key(method: str, target: str, body: bytes) -> str:
        return hashlib.sha256(method.encode() + b" " + target.encode() + b"\n" + body).hexdigest()[:20]

    def decide(self, key: str) -> tuple[str | None, random.Random]:
        """The fault (or None) for this arrival of the payload, and a generator for its details."""
        with self._lock:
            attempt = self.arrivals[key]
            self.arrivals[key] += 1
        rng = random.Random(f"{self.seed}:{key}:{attempt}")
        if attempt >= self.max_faults_per_payload or rng.random() >= self.rate:
            return None, rng
        # which requests fail is seeded by payload; the kinds take turns, so every kind is injected
        # once a proxy has injected len(kinds) faults, whatever the payloads (ports end up in them)
        with self._lock:
            kind = self.kinds[self._turn % len(self.kinds)]
            self._turn += 1
        return kind, rng

    def note(self, key: str, kind: str) -> None:
        with self._lock:
            self.injected[kind] += 1
            self.faults.append((key, kind))

    # ---- figures -------------------------------------------------------------------------------
    def survived(self) -> Counter[str]:
        """Faults by kind whose request was answered cleanly later (the client retried and got through)."""
        with self._lock:
            return Counter(kind for key, kind in self.faults if self.delivered[key] > 0)

    def paid_twice(self) -> int:
        """Payloads the upstream answered (billed) more than once."""
        with self._lock:
            return sum(n - 1 for n in self.upstream_answers.values() if n > 1)

    def set_gate(self, matches: Callable[[str, str, bytes], bool] | None, after: int = 0) -> None:
        """Hold matching requests once ``after`` of them were let through (None: no gate)."""
        self._gate_release.set()  # whatever an old gate holds is let go (unanswered)
        with self._lock:
            self.gate_matches, self.gate_after = matches, after
            self.gate_passed = self.gate_answered = 0
            self.gate_closed = threading.Event()
            self._gate_release = threading.Event()

    def gate_settled(self) -> bool:
        """The gate holds a request and every request it let through has been answered."""
        with self._lock:
            return self.gate_closed.is_set() and self.gate_answered >= self.gate_passed

    def _gate(self, method: str, target: str, body: bytes) -> tuple[bool, bool]:
        """(hold this request, it counts for the gate)."""
        with self._lock:
            if self.gate_matches is None or not self.gate_matches(method, target, body):
                return False, False
            if self.gate_passed >= self.gate_after:
                self.gate_closed.set()
                return True, True
            self.gate_passed += 1
            return False, True

    def rewrite(self, data: bytes) -> bytes:
        return data.replace(self.upstream_root.encode(), self.url.encode())


class _ProxyHandler(BaseHTTPRequestHandler):
    proxy: FaultProxy
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._relay("GET")

    def do_POST(self) -> None:
        self._relay("POST")

    def do_DELETE(self) -> None:
        self._relay("DELETE")

    def finish(self) -> None:  # after a reset the socket is gone: nothing left to flush
        with contextlib.suppress(OSError):
            super().finish()

    # ---- the relay -----------------------------------------------------------------------------
    def _relay(self, method: str) -> None:
        proxy = self.proxy
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        path = self.path.split("?", 1)[0]
        key = proxy.payload_key(method, self.path, body)
        hold, gated = proxy._gate(method, self.path, body)
        if hold:
            release = proxy._gate_release
            release.wait(timeout=300)  # never answered: the client is killed meanwhile
            self.close_connection = True
            return
        kind, rng = (None, None) if proxy.exempt(method, path) else proxy.decide(key)
        if kind is not None:
            proxy.note(key, kind)
        if kind == "timeout":
            time.sleep(proxy.timeout_s + 0.5)
            self.close_connection = True
            return
        if kind in _STATUS:
            data, content_type = error_body(proxy.protocol, kind)
            headers = {"content-type": content_type}
            if kind == "rate_limit":
                headers["retry-after"] = rng.choice(proxy.retry_after_choices)
            self._send(_STATUS[kind], headers, data)
            return
        status, headers, data = self._forward(method, body)
        if 200 <= status < 300:
            with proxy._lock:
                proxy.upstream_answers[key] += 1
        if kind == "malformed" and "json" not in headers.get("content-type", ""):
            kind = "truncated"  # a page is not JSON: spoil it the other way
        if kind == "malformed":
            self._send(200, headers, data[: max(1, len(data) // 2)])
        elif kind in ("truncated", "reset"):
            self._send_partial(status, headers, data, reset=kind == "reset")
        else:
            # counted before the answer goes out: the client may read it (and the test look) before
            # this thread runs again; an answer that could not be sent is taken back
            with proxy._lock:
                proxy.delivered[key] += 1
            try:
                self._send(status, headers, data)
            except OSError:
                with proxy._lock:
                    proxy.delivered[key] -= 1
                raise
        if gated:
            with proxy._lock:
                proxy.gate_answered += 1

    def _forward(self, method: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        proxy = self.proxy
        conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["host"] = f"{proxy.upstream_host}:{proxy.upstream_port}"
            conn.request(method, self.path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            out = {k.lower(): v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
            if "location" in out:
                out["location"] = proxy.rewrite(out["location"].encode()).decode()
            return response.status, out, proxy.rewrite(data)
        finally:
            conn.close()

    def _head(self, status: int, headers: dict[str, str], length: int) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(length))
        self.end_headers()

    def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
        try:
            self._head(status, headers, len(data))
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def _send_partial(self, status: int, headers: dict[str, str], data: bytes, *, reset: bool) -> None:
        """Promise the whole body, send half, then close (FIN) or reset (RST) the connection."""
        self.close_connection = True
        try:
            self._head(status, headers, len(data))
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            if reset:
                # SO_LINGER 0: close() sends RST instead of FIN
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


def free_ports(n: int) -> list[int]:
    """``n`` ports free right now on 127.0.0.1 (for proxies that two runs in a row must share)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
