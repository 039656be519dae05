"""Start and stop a real `valuemulch serve` process for the service tests, and check the error shape."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

READY_TIMEOUT_S = 120.0
ERROR_KEYS = {"status", "code", "message", "field"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env() -> dict[str, str]:
    """The environment `test_cli.run` gives CLI processes (no data directory, no user cache)."""
    env = {k: v for k, v in os.environ.items() if k != "VALUEMULCH_DATA"}
    env["XDG_CACHE_HOME"] = "/nonexistent-valuemulch-cache"
    env["PYTHONUNBUFFERED"] = "1"
    # load tests fire hundreds of requests a second from one address; the rate limit has its own test
    env["VALUEMULCH_LIMITS__RATE_PER_MINUTE"] = "60000000"
    env["VALUEMULCH_LIMITS__RATE_BURST"] = "1000000"
    return env


@dataclass
class Server:
    """One `python -m valuemulch.cli serve` process on 127.0.0.1; ``proc.pid`` is uvicorn's own process."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    args: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.is_file() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


def start_server(args: list[str], logdir: Path, name: str = "serve", timeout: float = READY_TIMEOUT_S) -> Server:
    """Start `valuemulch serve ARGS --port <free>` and wait until /v1/health answers 200.

    A port taken between choosing and binding is retried with another; any other early exit, or no
    answer within ``timeout``, fails with the server's stderr in the message.
    """
    logdir.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        port = free_port()
        log = logdir / f"{name}-{port}.stderr"
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "valuemulch.cli", "serve", "--port", str(port), *args],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=cli_env(),
            )
        server = Server(proc, port, log, args)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                if httpx.get(f"{server.base}/v1/health", timeout=2.0).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        server.stop()
        text = server.stderr()
        if proc.returncode is not None and "address already in use" in text.lower() and attempt < 2:
            continue
        raise AssertionError(
            f"`valuemulch serve {' '.join(args)}` on port {port} was not ready within {timeout:.0f} s "
            f"(exit code {proc.returncode}); its stderr:\n{text}"
        )
    raise AssertionError("unreachable")  # pragma: no cover


def assert_error(response: httpx.Response, status: int, field_name: Any = ..., code: str | None = None) -> dict[str, Any]:
    """The one error shape, ``{"error": {"status", "code", "message", "field"}}``, with this status (and field)."""
    context = f"{response.request.method} {response.request.url} -> {response.status_code}: {response.text[:500]}"
    assert response.status_code == status, context
    assert response.headers.get("content-type", "").startswith("application/json"), context
    body = response.json()
    check_error_shape(body, status, context)
    if field_name is not ...:
        assert body["error"]["field"] == field_name, context
    if code is not None:
        assert body["error"]["code"] == code, context
    return body["error"]


def check_error_shape(body: Any, status: int, context: str = "") -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, context or body
    error = body["error"]
    assert isinstance(error, dict) and set(error) == ERROR_KEYS, context or body
    assert error["status"] == status, context or body
    assert isinstance(error["code"], str) and error["code"], context or body
    assert isinstance(error["message"], str) and error["message"], context or body
    assert error["field"] is None or isinstance(error["field"], str), context or body


@contextmanager
def uvicorn_thread(app: Any, timeout: float = 120.0) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn on a free 127.0.0.1 port, in a thread of this process, and yield
    its base URL once ``/v1/health`` says ready; stopped (a clean shutdown) on exit."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.config.port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start and become ready"
            if server.started:
                try:
                    if httpx.get(f"{base}/v1/health", timeout=2.0).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
            time.sleep(0.05)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)
