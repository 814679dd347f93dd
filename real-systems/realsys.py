"""Install, initialise, clone, start and stop the real Tryton ERP and Vendure storefront.

Used by the end-to-end tests (tests/e2e/conftest.py imports this file) and by
scripts/real-systems.sh for a person. Standard library only; run with the project's python.

* install: Tryton from real-systems/tryton/requirements.txt into var/real-systems/tryton/venv;
  Vendure by ``npm ci`` from real-systems/vendure/package-lock.json into var/real-systems/vendure.
  A stamp (hash of the pinned files) skips the install when nothing changed.
* template databases, created once: ``erpsync_tryton_tpl_<hash>`` (trytond-admin + seed.py) and
  ``erpsync_vendure_tpl_<hash>`` (schema + seed over the Admin API). The hash covers everything
  that shapes them, so a change of pins or seed makes a new template; a template is built under a
  temporary name and renamed when complete, so an interrupted init never leaves a broken one.
* per test (or per person): ``createdb -T template`` (a fraction of a second) and a server on it.
* on a shared PostgreSQL it touches only its own exact names: the databases it is told to use
  (``--tryton-db``/``--vendure-db``), the templates of the current pins, and stale templates it
  built itself (listed in ``$VAR/templates.json``); never a database found by a prefix.

CLI: ``python real-systems/realsys.py [--pg-host H] [--pg-port P] [--pg-user U]
install|init|up|down|status [--tryton-db NAME] [--vendure-db NAME] [--tryton-port N]
[--vendure-port N]`` (``--help`` for each).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VAR = Path(os.environ.get("ERPSYNC_REAL_SYSTEMS_HOME", ROOT / "var" / "real-systems"))
TRYTON_SRC = HERE / "tryton"
VENDURE_SRC = HERE / "vendure"
TRYTON_HOME = VAR / "tryton"
VENDURE_HOME = VAR / "vendure"
TRYTON_VENV = TRYTON_HOME / "venv"

PG_HOST = os.environ.get("ERPSYNC_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("ERPSYNC_PG_PORT", "5432"))
PG_USER = os.environ.get("ERPSYNC_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("ERPSYNC_PG_PASSWORD", "")

TRYTON_ADMIN = "admin"
TRYTON_PASSWORD = os.environ.get("ERPSYNC_TRYTON_PASSWORD", "erpsync-tryton")
VENDURE_ADMIN = "superadmin"
VENDURE_PASSWORD = os.environ.get("ERPSYNC_VENDURE_PASSWORD", "erpsync-vendure")

#: product_kit: kits (a product of type "kit" with components), whose availability inventory_sync
#: derives from its components' on the real pair as on the sandbox
TRYTON_MODULES = ["sale", "stock", "product", "party", "company", "stock_package_shipping", "product_kit"]
#: one shipping method and one payment method, as a fresh shop would set them up
VENDURE_SHIPPING_RATE = 500  # minor units
VENDURE_COUNTRIES = {"US": "United States", "DE": "Germany", "FR": "France", "GB": "United Kingdom",
                     "NL": "Netherlands", "CA": "Canada"}


class RealSystemsError(RuntimeError):
    """A step of install/init/start failed; the message names the step and the log to read."""


def log(msg: str) -> None:
    print(f"[real-systems] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- helpers


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
    return h.hexdigest()[:10]


def _files_digest(*paths: Path) -> str:
    return _digest(*(p.read_bytes() for p in paths))


def _run(cmd: list[str], *, what: str, env: dict[str, str] | None = None, cwd: Path | None = None,
         log_file: Path | None = None) -> None:
    started = time.monotonic()
    out = open(log_file, "ab") if log_file else subprocess.PIPE  # noqa: SIM115
    try:
        proc = subprocess.run(cmd, env={**os.environ, **(env or {})}, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                              check=False)
    finally:
        if log_file:
            out.close()
    if proc.returncode != 0:
        tail = ""
        if log_file and log_file.exists():
            tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-30:])
        elif proc.stdout:
            tail = proc.stdout.decode(errors="replace")[-3000:]
        raise RealSystemsError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    log(f"{what}: {time.monotonic() - started:.1f}s")


def _pg_env() -> dict[str, str]:
    env = {"PGHOST": PG_HOST, "PGPORT": str(PG_PORT), "PGUSER": PG_USER}
    if PG_PASSWORD:
        env["PGPASSWORD"] = PG_PASSWORD
    return env


def _psql(sql: str) -> str:
    proc = subprocess.run(["psql", "-d", "postgres", "-XAtqc", sql], env={**os.environ, **_pg_env()},
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RealSystemsError(f"psql failed ({sql}): {proc.stderr.strip()}")
    return proc.stdout.strip()


def db_exists(name: str) -> bool:
    return _psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1"


def drop_db(name: str) -> None:
    _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def clone_db(template: str, name: str) -> None:
    """A fresh copy of an initialised database (``createdb -T``: a fraction of a second)."""
    drop_db(name)
    _psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _need(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise RealSystemsError(f"{tool} not found on PATH: {hint}")
    return path


# --------------------------------------------------------------------------- install


def tryton_python() -> Path:
    return TRYTON_VENV / "bin" / "python"


def install_tryton() -> None:
    """Tryton's own venv from the pinned requirements; skipped when the stamp matches."""
    req = TRYTON_SRC / "requirements.txt"
    stamp = TRYTON_HOME / "installed.stamp"
    want = _files_digest(req)
    if stamp.exists() and stamp.read_text().strip() == want and tryton_python().exists():
        return
    log("installing Tryton (pinned, own venv) ...")
    if TRYTON_VENV.exists():
        shutil.rmtree(TRYTON_VENV)
    TRYTON_HOME.mkdir(parents=True, exist_ok=True)
    logf = TRYTON_HOME / "install.log"
    python = os.environ.get("ERPSYNC_TRYTON_PYTHON") or _base_python()
    _run([python, "-m", "venv", str(TRYTON_VENV)], what="tryton venv", log_file=logf)
    _run([str(tryton_python()), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(req)],
         what="tryton pip install", log_file=logf)
    stamp.write_text(want)


def _base_python() -> str:
    """The interpreter the project's venv was made from (a venv of a venv works, but is fragile)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return base if Path(base).exists() else sys.executable


def install_vendure() -> None:
    """``npm ci`` from the committed lockfile into var/; skipped when the stamp matches."""
    stamp = VENDURE_HOME / "installed.stamp"
    pkg, lock = VENDURE_SRC / "package.json", VENDURE_SRC / "package-lock.json"
    want = _files_digest(pkg, lock)
    VENDURE_HOME.mkdir(parents=True, exist_ok=True)
    if not (stamp.exists() and stamp.read_text().strip() == want and (VENDURE_HOME / "node_modules").exists()):
        _need("npm", "install Node 20 and npm (https://nodejs.org)")
        log("installing Vendure (npm ci from the lockfile) ...")
        shutil.copy2(pkg, VENDURE_HOME / "package.json")
        shutil.copy2(lock, VENDURE_HOME / "package-lock.json")
        _run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], what="vendure npm ci", cwd=VENDURE_HOME,
             log_file=VENDURE_HOME / "install.log")
        stamp.write_text(want)
    shutil.copy2(VENDURE_SRC / "index.js", VENDURE_HOME / "index.js")


def install() -> None:
    install_tryton()
    install_vendure()


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    database: str
    info: dict[str, Any] = field(default_factory=dict)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _spawn(name: str, cmd: list[str], env: dict[str, str], log_path: Path, port: int, database: str,
           cwd: Path | None = None) -> Server:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out = open(log_path, "ab")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    out.close()
    return Server(name, proc, port, log_path, database)


def _wait(server: Server, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RealSystemsError(f"{server.name} exited with {server.proc.returncode} while starting; "
                                   f"log {server.log_path}:\n{server.log_tail()}")
        try:
            if ready():
                return
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(0.2)
    server.stop()
    raise RealSystemsError(f"{server.name} not ready after {timeout:.0f}s; log {server.log_path}:\n"
                           f"{server.log_tail()}")


def _post_json(url: str, payload: Any, headers: dict[str, str] | None = None,
               timeout: float = 10.0) -> tuple[Any, dict[str, str]]:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - local servers only
        return json.loads(resp.read() or b"null"), dict(resp.headers)


def tryton_conf(port: int = 8000) -> Path:
    """A config file per port (trytond reads the listen address from its file only)."""
    conf = TRYTON_HOME / "conf" / f"trytond-{port}.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    auth = f"{PG_USER}:{PG_PASSWORD}@" if PG_PASSWORD else f"{PG_USER}@"
    text = (f"[database]\nuri = postgresql://{auth}{PG_HOST}:{PG_PORT}/\n"
            f"[web]\nlisten = 127.0.0.1:{port}\n"
            "[session]\ntimeout = 3600\n")
    if not conf.exists() or conf.read_text() != text:
        conf.write_text(text)
    return conf


def start_tryton(database: str, port: int | None = None, log_path: Path | None = None,
                 timeout: float = 60.0) -> Server:
    """trytond serving ``database`` (it must be listed at start: pools are loaded at start)."""
    port = port or free_port()
    server = _spawn("trytond", [str(TRYTON_VENV / "bin" / "trytond"), "-c", str(tryton_conf(port)), "-d", database],
                    {}, log_path or TRYTON_HOME / "log" / f"{database}.log", port, database)
    url = f"http://127.0.0.1:{port}/{database}/rpc/"

    def ready() -> bool:
        body, _ = _post_json(url, {"method": "common.db.login", "id": 1,
                                   "params": [TRYTON_ADMIN, {"password": TRYTON_PASSWORD}, "en"]}, timeout=5)
        return isinstance(body, dict) and "result" in body

    _wait(server, ready, timeout)
    server.info = {"url": f"http://127.0.0.1:{port}/{database}", "login": TRYTON_ADMIN, "password": TRYTON_PASSWORD}
    return server


def start_vendure(database: str, port: int | None = None, log_path: Path | None = None, *,
                  synchronize: bool = False, timeout: float = 90.0) -> Server:
    port = port or free_port()
    env = {"VENDURE_PORT": str(port), "VENDURE_DB_HOST": PG_HOST, "VENDURE_DB_PORT": str(PG_PORT),
           "VENDURE_DB_USER": PG_USER, "VENDURE_DB_PASSWORD": PG_PASSWORD, "VENDURE_DB_NAME": database,
           "VENDURE_SUPERADMIN": VENDURE_ADMIN, "VENDURE_SUPERADMIN_PASSWORD": VENDURE_PASSWORD,
           "VENDURE_SYNCHRONIZE": "1" if synchronize else "0", "VENDURE_DISABLE_TELEMETRY": "true"}
    node = _need("node", "install Node 20 (https://nodejs.org)")
    server = _spawn("vendure", [node, "index.js"], env, log_path or VENDURE_HOME / "log" / f"{database}.log", port,
                    database, cwd=VENDURE_HOME)
    url = f"http://127.0.0.1:{port}/admin-api"

    def ready() -> bool:
        body, _ = _post_json(url, {"query": "{ __typename }"}, timeout=5)
        return isinstance(body, dict) and "data" in body

    _wait(server, ready, timeout)
    server.info = {"url": f"http://127.0.0.1:{port}", "login": VENDURE_ADMIN, "password": VENDURE_PASSWORD,
                   "admin_api": url}
    return server


# --------------------------------------------------------------------------- templates


def tryton_template() -> str:
    return "erpsync_tryton_tpl_" + _digest(
        (TRYTON_SRC / "requirements.txt").read_bytes(), (TRYTON_SRC / "seed.py").read_bytes(),
        " ".join(TRYTON_MODULES), TRYTON_PASSWORD)


def vendure_template() -> str:
    import inspect

    return "erpsync_vendure_tpl_" + _digest(
        (VENDURE_SRC / "package-lock.json").read_bytes(), (VENDURE_SRC / "index.js").read_bytes(),
        inspect.getsource(seed_vendure), json.dumps(VENDURE_COUNTRIES), str(VENDURE_SHIPPING_RATE), VENDURE_PASSWORD)


#: the templates this installation (``$VAR``) built: the only ones it ever drops
TEMPLATES_BUILT = "templates.json"


def _built() -> dict[str, list[str]]:
    path = VAR / TEMPLATES_BUILT
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: [str(n) for n in v] for k, v in data.items() if isinstance(v, list)} if isinstance(data, dict) else {}


def remember_template(kind: str, name: str) -> None:
    """Record that this installation built template ``name`` (of ``kind``: tryton or vendure)."""
    built = _built()
    names = built.setdefault(kind, [])
    if name not in names:
        names.append(name)
    VAR.mkdir(parents=True, exist_ok=True)
    (VAR / TEMPLATES_BUILT).write_text(json.dumps(built, indent=2))


def drop_stale_templates(kind: str, keep: str) -> list[str]:
    """Templates of earlier pins or seeds that this installation built itself (``$VAR/templates.json``):
    dropped when a new one is built (they are 50-100 MB each). A database is never chosen by a
    prefix: on a shared PostgreSQL another checkout's templates (or anyone's databases) stay."""
    built = _built()
    dropped = [n for n in built.get(kind, []) if n != keep]
    for name in dropped:
        drop_db(name)
    built[kind] = [n for n in built.get(kind, []) if n == keep]
    VAR.mkdir(parents=True, exist_ok=True)
    (VAR / TEMPLATES_BUILT).write_text(json.dumps(built, indent=2))
    return dropped


def init_tryton() -> str:
    """The Tryton template database (about a minute, once)."""
    name = tryton_template()
    if db_exists(name):
        return name
    log(f"initialising Tryton database {name} (about a minute, once) ...")
    building = name + "_building"
    drop_db(building)
    _psql(f'CREATE DATABASE "{building}"')
    passfile = TRYTON_HOME / "admin.pass"
    passfile.write_text(TRYTON_PASSWORD + "\n")
    logf = TRYTON_HOME / "init.log"
    conf = str(tryton_conf())
    _run([str(TRYTON_VENV / "bin" / "trytond-admin"), "-c", conf, "-d", building, "--all",
          "--activate-dependencies", "-u", *TRYTON_MODULES, "--email", "admin@example.com"],
         what="trytond-admin --all", env={"TRYTONPASSFILE": str(passfile)}, log_file=logf)
    _run([str(tryton_python()), str(TRYTON_SRC / "seed.py"), "-c", conf, "-d", building], what="tryton seed",
         log_file=logf)
    _psql(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    remember_template("tryton", name)
    drop_stale_templates("tryton", name)
    return name


def init_vendure(port: int | None = None) -> str:
    """The Vendure template database: schema, superadmin, then the shop setup over the Admin API;
    the server that builds it listens on ``port`` (None: a free one)."""
    name = vendure_template()
    if db_exists(name):
        return name
    log(f"initialising Vendure database {name} ...")
    building = name + "_building"
    drop_db(building)
    _psql(f'CREATE DATABASE "{building}"')
    server = start_vendure(building, port, synchronize=True, log_path=VENDURE_HOME / "init.log")
    try:
        seed_vendure(server.info["admin_api"])
    finally:
        server.stop()
    _psql(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    remember_template("vendure", name)
    drop_stale_templates("vendure", name)
    return name


def init(vendure_port: int | None = None) -> tuple[str, str]:
    install()
    return init_tryton(), init_vendure(vendure_port)


class Gql:
    """A tiny Admin API client for seeding (the adapter is the real client; this is setup only)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.token = ""

    def __call__(self, query: str, **variables: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        body, resp_headers = _post_json(self.url, {"query": query, "variables": variables}, headers)
        if body.get("errors"):
            raise RealSystemsError(f"Vendure seed: {body['errors']}")
        token = resp_headers.get("vendure-auth-token") or resp_headers.get("Vendure-Auth-Token")
        if token:
            self.token = token
        return body["data"]


def seed_vendure(admin_api: str) -> None:
    gql = Gql(admin_api)
    gql("mutation($u:String!,$p:String!){login(username:$u,password:$p){... on CurrentUser{id}}}",
        u=VENDURE_ADMIN, p=VENDURE_PASSWORD)
    ids = []
    for code, name in VENDURE_COUNTRIES.items():
        ids.append(gql("mutation($i:CreateCountryInput!){createCountry(input:$i){id}}",
                       i={"code": code, "enabled": True,
                          "translations": [{"languageCode": "en", "name": name}]})["createCountry"]["id"])
    zone = gql("mutation($i:CreateZoneInput!){createZone(input:$i){id}}",
               i={"name": "World", "memberIds": ids})["createZone"]["id"]
    channel = gql("{activeChannel{id}}")["activeChannel"]["id"]
    gql("mutation($i:UpdateChannelInput!){updateChannel(input:$i){... on Channel{id}}}",
        i={"id": channel, "defaultTaxZoneId": zone, "defaultShippingZoneId": zone})
    category = gql("mutation($i:CreateTaxCategoryInput!){createTaxCategory(input:$i){id}}",
                   i={"name": "Standard", "isDefault": True})["createTaxCategory"]["id"]
    # 0%: Tryton taxes need a chart of accounts, which the test ERP does not set up
    gql("mutation($i:CreateTaxRateInput!){createTaxRate(input:$i){id}}",
        i={"name": "No tax", "enabled": True, "value": 0, "categoryId": category, "zoneId": zone})
    gql("mutation($i:CreateShippingMethodInput!){createShippingMethod(input:$i){id}}",
        i={"code": "standard", "fulfillmentHandler": "manual-fulfillment",
           "checker": {"code": "default-shipping-eligibility-checker",
                       "arguments": [{"name": "orderMinimum", "value": "0"}]},
           "calculator": {"code": "default-shipping-calculator",
                          "arguments": [{"name": "rate", "value": str(VENDURE_SHIPPING_RATE)},
                                        {"name": "includesTax", "value": "auto"},
                                        {"name": "taxRate", "value": "0"}]},
           "translations": [{"languageCode": "en", "name": "Standard", "description": ""}]})
    gql("mutation($i:CreatePaymentMethodInput!){createPaymentMethod(input:$i){id}}",
        i={"code": "card", "enabled": True,
           "handler": {"code": "dummy-payment-handler", "arguments": [{"name": "automaticSettle", "value": "true"}]},
           "translations": [{"languageCode": "en", "name": "Card", "description": ""}]})


# --------------------------------------------------------------------------- a running pair


@dataclass
class Pair:
    """Both servers on their own fresh databases."""

    tryton: Server
    vendure: Server

    def stop(self) -> None:
        for s in (self.tryton, self.vendure):
            s.stop()

    def connections(self) -> dict[str, dict[str, Any]]:
        """Airflow Connections (JSON form) pointing at this pair: only configuration differs from the sandbox."""
        return {
            "erp_default": {"conn_type": "erpsync_erp", "host": self.tryton.info["url"],
                            "login": self.tryton.info["login"], "password": self.tryton.info["password"],
                            "extra": {"adapter": "tryton"}},
            "storefront_default": {"conn_type": "erpsync_storefront", "host": self.vendure.info["url"],
                                   "login": self.vendure.info["login"], "password": self.vendure.info["password"],
                                   "extra": {"adapter": "vendure", "username": self.vendure.info["login"]}},
        }


def start_pair(tryton_db: str, vendure_db: str, *, log_dir: Path | None = None,
               tryton_port: int | None = None, vendure_port: int | None = None) -> Pair:
    """Start both at once (they take a few seconds each; started in parallel)."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        t = pool.submit(start_tryton, tryton_db, tryton_port,
                        log_dir / "tryton.log" if log_dir else None)
        v = pool.submit(start_vendure, vendure_db, vendure_port,
                        log_dir / "vendure.log" if log_dir else None)
        errors = []
        servers: list[Server] = []
        for fut in (t, v):
            try:
                servers.append(fut.result())
            except Exception as exc:  # noqa: BLE001 - stop the other, then raise
                errors.append(exc)
        if errors:
            for s in servers:
                s.stop()
            raise errors[0]
    return Pair(servers[0], servers[1])


# --------------------------------------------------------------------------- CLI (for a person)

PERSONAL = {"tryton": "erpsync_tryton", "vendure": "erpsync_vendure"}
DEFAULT_PORTS = {"tryton": 8000, "vendure": 3000}


@dataclass(frozen=True)
class Names:
    """What ``up``/``down``/``status`` work on: the two databases (their own exact names, the only
    databases they create or replace) and the ports the servers listen on."""

    tryton_db: str = PERSONAL["tryton"]
    vendure_db: str = PERSONAL["vendure"]
    tryton_port: int = DEFAULT_PORTS["tryton"]
    vendure_port: int = DEFAULT_PORTS["vendure"]

    def __post_init__(self) -> None:
        for what, db in (("--tryton-db", self.tryton_db), ("--vendure-db", self.vendure_db)):
            if not db or len(db) > 63 or not all(c.isalnum() or c == "_" for c in db) or db[0].isdigit():
                raise RealSystemsError(f"{what} {db!r}: use letters, digits and _ (at most 63, not starting "
                                       "with a digit)")
            if db.startswith(("erpsync_tryton_tpl_", "erpsync_vendure_tpl_", "erpsync_e2e_")) or db == "postgres":
                raise RealSystemsError(f"{what} {db!r} is a name realsys keeps for templates or tests; choose another")
        if self.tryton_db == self.vendure_db:
            raise RealSystemsError("--tryton-db and --vendure-db must differ")
        for what, port in (("--tryton-port", self.tryton_port), ("--vendure-port", self.vendure_port)):
            if not 1 <= port <= 65535:
                raise RealSystemsError(f"{what} {port}: not a TCP port")
        if self.tryton_port == self.vendure_port:
            raise RealSystemsError("--tryton-port and --vendure-port must differ")

    @property
    def run_dir(self) -> Path:
        """Pid files, logs and Connections of this pair (one directory per pair of databases)."""
        return VAR / "run" / f"{self.tryton_db}+{self.vendure_db}"


RUN = VAR / "run"


def up(names: Names, fresh: bool) -> None:
    tpl_t, tpl_v = init(names.vendure_port)
    for template, db in ((tpl_t, names.tryton_db), (tpl_v, names.vendure_db)):
        if fresh or not db_exists(db):
            clone_db(template, db)
    down(names, quiet=True)
    run = names.run_dir
    run.mkdir(parents=True, exist_ok=True)
    pair = start_pair(names.tryton_db, names.vendure_db, log_dir=run, tryton_port=names.tryton_port,
                      vendure_port=names.vendure_port)
    for s in (pair.tryton, pair.vendure):
        (run / f"{s.name}.pid").write_text(str(s.proc.pid))
    (run / "connections.json").write_text(json.dumps(pair.connections(), indent=2))
    print(render_connections(pair.connections(), run))


def render_connections(conns: dict[str, dict[str, Any]], run: Path = RUN) -> str:
    lines = ["Tryton ERP and Vendure storefront are running. Airflow Connections to use them:", ""]
    for conn_id, conn in conns.items():
        lines.append(f"export AIRFLOW_CONN_{conn_id.upper()}='{json.dumps(conn, separators=(',', ':'))}'")
    lines += ["", f"Logs: {run}/tryton.log, {run}/vendure.log. Stop: scripts/real-systems.sh down (with the "
              "same --tryton-db/--vendure-db)"]
    return "\n".join(lines)


def down(names: Names | None = None, quiet: bool = False) -> None:
    run = (names or Names()).run_dir
    for name in ("trytond", "vendure"):
        pid_file = run / f"{name}.pid"
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text())
        try:
            os.killpg(pid, signal.SIGTERM)
            for _ in range(50):
                os.killpg(pid, 0)
                time.sleep(0.1)
        except ProcessLookupError:
            pass
        pid_file.unlink()
        if not quiet:
            log(f"stopped {name} (pid {pid})")


def status(names: Names | None = None) -> None:
    run = (names or Names()).run_dir
    for name in ("trytond", "vendure"):
        pid_file = run / f"{name}.pid"
        state = "stopped"
        if pid_file.exists():
            try:
                os.killpg(int(pid_file.read_text()), 0)
                state = f"running (pid {pid_file.read_text().strip()})"
            except ProcessLookupError:
                state = "stopped (stale pid file)"
        print(f"{name}: {state}")
    conns = run / "connections.json"
    if conns.exists():
        print(render_connections(json.loads(conns.read_text()), run))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pg-host", default=None, help=f"PostgreSQL host (ERPSYNC_PG_HOST, default {PG_HOST})")
    p.add_argument("--pg-port", type=int, default=None, help=f"PostgreSQL port (ERPSYNC_PG_PORT, default {PG_PORT})")
    p.add_argument("--pg-user", default=None, help=f"PostgreSQL user (ERPSYNC_PG_USER, default {PG_USER})")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("install", help="install pinned Tryton and Vendure under var/")
    p_init = sub.add_parser("init", help="install, then build the template databases (once)")
    p_init.add_argument("--vendure-port", type=int, default=None,
                        help="port of the Vendure server that builds its template (default: a free port)")
    for name, text in (("up", "init, then start both on their own databases and print the Connections"),
                       ("down", "stop what `up` started (same database names)"),
                       ("status", "are they running, and the Connections (same database names)")):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("--tryton-db", default=PERSONAL["tryton"], help="Tryton's database (created from the template)")
        sp.add_argument("--vendure-db", default=PERSONAL["vendure"], help="Vendure's database (created from the template)")
        if name == "up":
            sp.add_argument("--tryton-port", type=int, default=DEFAULT_PORTS["tryton"])
            sp.add_argument("--vendure-port", type=int, default=DEFAULT_PORTS["vendure"],
                            help="Vendure's port (also while its template is built)")
            sp.add_argument("--fresh", action="store_true",
                            help="replace its own two databases by fresh copies of the templates")
    return p


def names_of(args: argparse.Namespace) -> Names:
    return Names(args.tryton_db, args.vendure_db, getattr(args, "tryton_port", DEFAULT_PORTS["tryton"]),
                 getattr(args, "vendure_port", DEFAULT_PORTS["vendure"]))


def configure_pg(args: argparse.Namespace) -> None:
    """The PostgreSQL server from the options (else the environment, else 127.0.0.1:5432)."""
    global PG_HOST, PG_PORT, PG_USER
    if args.pg_host:
        PG_HOST = args.pg_host
    if args.pg_port:
        PG_PORT = args.pg_port
    if args.pg_user:
        PG_USER = args.pg_user


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        configure_pg(args)
        if args.cmd == "install":
            install()
        elif args.cmd == "init":
            print("\n".join(init(args.vendure_port)))
        elif args.cmd == "up":
            up(names_of(args), args.fresh)
        elif args.cmd == "down":
            down(names_of(args))
        else:
            status(names_of(args))
    except RealSystemsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
