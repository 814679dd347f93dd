"""Start the sandbox services as child processes, wait until they answer, stop them.

Reused by the pytest fixture, the benchmarks and the run scripts. Each service binds the port it is
given (0 = a free one chosen by the OS) and prints its URL as the first stdout line, which is how
the launcher learns the port without a race.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

DEFAULT_TOKEN = "sandbox-token"
DEFAULT_USER = "erpsync"
DEFAULT_PASSWORD = "erpsync-sandbox"


class SandboxStartError(RuntimeError):
    """A service did not come up; the message names it and its log file."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM when the launching process dies, so no orphan keeps a port."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # best effort on non-Linux systems
        pass


@dataclass
class Service:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def start_service(
    name: str, *, port: int = 0, host: str = "127.0.0.1", args: list[str] | None = None,
    log_dir: str | Path | None = None, timeout: float = 20.0, die_with_parent: bool = True,
) -> Service:
    """Start ``python -m erpsync.sandbox <name>`` and wait until ``/_admin/health`` answers."""
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="erpsync-sandbox-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    cmd = [sys.executable, "-m", "erpsync.sandbox", name, "--port", str(port), "--host", host, *(args or [])]
    log = open(log_path, "ab")  # the child owns it for its lifetime
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent if die_with_parent and sys.platform.startswith("linux") else None,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    log.close()
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.put(raw.decode(errors="replace").strip())

    threading.Thread(target=pump, daemon=True, name=f"sandbox-{name}-stdout").start()
    deadline = time.monotonic() + timeout
    url = None
    while url is None:
        if proc.poll() is not None:
            raise SandboxStartError(f"sandbox {name} exited with {proc.returncode} at startup; see {log_path}")
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            line = ""
        if " listening on " in line:
            url = line.rsplit(" ", 1)[-1]
        elif time.monotonic() > deadline:
            proc.kill()
            raise SandboxStartError(f"sandbox {name} did not start within {timeout:.0f}s; see {log_path}")
    service = Service(name, url, proc, log_path)
    try:
        wait_healthy(url, timeout=max(1.0, deadline - time.monotonic()))
    except SandboxStartError:
        service.stop()
        raise
    return service


def wait_healthy(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/_admin/health", timeout=1).status_code == 200:
                return
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.05)
    raise SandboxStartError(f"{url} is not healthy after {timeout:.0f}s ({last})")


@dataclass
class Sandbox:
    """Both running services and what a client needs to talk to them."""

    erp: Service
    storefront: Service
    token: str = DEFAULT_TOKEN
    erp_user: str = DEFAULT_USER
    erp_password: str = DEFAULT_PASSWORD
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def erp_url(self) -> str:
        return self.erp.url

    @property
    def storefront_url(self) -> str:
        return self.storefront.url

    def url(self, system: str) -> str:
        return {"erp": self.erp_url, "storefront": self.storefront_url}[system]

    def admin(self, system: str, method: str, path: str, body: Any = None) -> Any:
        resp = requests.request(method, f"{self.url(system)}/_admin/{path}", json=body, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def set_faults(self, system: str, **faults: Any) -> Any:
        return self.admin(system, "POST", "faults", faults)

    def clear_faults(self, system: str | None = None) -> None:
        for s in [system] if system else ["erp", "storefront"]:
            self.admin(s, "DELETE", "faults")

    def reset(self, system: str | None = None, **seed: int) -> None:
        for s in [system] if system else ["erp", "storefront"]:
            self.admin(s, "POST", "reset", seed or None)

    def settings(self, system: str, **changes: Any) -> Any:
        """The realism settings of one service (``GET``), or merge ``changes`` into them (``POST``);
        ERP ``default_warehouse``, storefront ``inventory_policy``, ``taxes``, ``tax_rate``, ``tax_code``."""
        return self.admin(system, "POST", "settings", changes) if changes else self.admin(system, "GET", "settings")

    def stats(self, system: str) -> Any:
        return self.admin(system, "GET", "stats")

    def alive(self) -> bool:
        return self.erp.process.poll() is None and self.storefront.process.poll() is None

    def stop(self) -> None:
        for s in (self.storefront, self.erp):
            s.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sandbox(
    *, erp_port: int = 0, storefront_port: int = 0, host: str = "127.0.0.1", seed: int = 42, skus: int = 200,
    locations: int = 3, customers: int = 2000, orders: int = 500, token: str = DEFAULT_TOKEN,
    erp_user: str = DEFAULT_USER, erp_password: str = DEFAULT_PASSWORD, session_ttl: float = 1800,
    auto_ship_seconds: float = 0, log_dir: str | Path | None = None, timeout: float = 20.0,
    die_with_parent: bool = True, default_warehouse: str | None = None, inventory_policy: str = "deny",
    taxes: bool = True, tax_rate: str | None = None, tax_code: str = "TAX",
) -> Sandbox:
    """Start the ERP and the storefront (ports 0 = free ports) and return once both are healthy.

    Realistic by default: the ERP refuses a sales order that names no warehouse (it has several)
    unless ``default_warehouse`` is given; the store refuses checkouts beyond stock
    (``inventory_policy`` ``deny``) and taxes orders (``taxes``, by country or a flat ``tax_rate``).
    """
    seed_args = ["--seed", str(seed), "--skus", str(skus), "--locations", str(locations),
                 "--customers", str(customers), "--orders", str(orders)]
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="erpsync-sandbox-"))
    erp = start_service("erp", port=erp_port, host=host, log_dir=log_dir, timeout=timeout,
                        die_with_parent=die_with_parent,
                        args=[*seed_args, "--session-ttl", str(session_ttl), "--erp-user", erp_user,
                              "--erp-password", erp_password, "--auto-ship-seconds", str(auto_ship_seconds),
                              *(["--default-warehouse", default_warehouse] if default_warehouse else [])])
    try:
        storefront = start_service("storefront", port=storefront_port, host=host, log_dir=log_dir, timeout=timeout,
                                   die_with_parent=die_with_parent,
                                   args=[*seed_args, "--storefront-token", token, "--inventory-policy", inventory_policy,
                                         "--tax-code", tax_code, *([] if taxes else ["--no-taxes"]),
                                         *(["--tax-rate", str(tax_rate)] if tax_rate is not None else [])])
    except Exception:
        erp.stop()
        raise
    return Sandbox(erp, storefront, token, erp_user, erp_password,
                   {"seed": seed, "skus": skus, "locations": locations, "customers": customers, "orders": orders})
