"""real-systems/realsys.py on a shared PostgreSQL (issue 16 item 10): database names and ports come
from options, Vendure's template is built on the port given, and only its own exact names are
ever dropped (never databases found by a prefix). No server is started: PostgreSQL and the
servers are replaced by recorders of what would be done."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def realsys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    spec = importlib.util.spec_from_file_location("realsys_under_test", ROOT / "real-systems" / "realsys.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "VAR", tmp_path / "var")
    yield module
    sys.modules.pop(spec.name, None)


class FakePg:
    """A PostgreSQL with other people's databases on it; records every statement."""

    def __init__(self, names: list[str]) -> None:
        self.names = set(names)
        self.sql: list[str] = []

    def __call__(self, sql: str) -> str:
        self.sql.append(sql)
        if sql.startswith("SELECT datname"):
            return "\n".join(sorted(self.names))
        if sql.startswith("SELECT 1 FROM pg_database WHERE datname = "):
            return "1" if sql.split("'")[1] in self.names else ""
        if sql.startswith("DROP DATABASE IF EXISTS"):
            self.names.discard(sql.split('"')[1])
        elif sql.startswith("CREATE DATABASE"):
            self.names.add(sql.split('"')[1])
        elif sql.startswith("ALTER DATABASE"):
            old, new = sql.split('"')[1], sql.split('"')[3]
            self.names.discard(old)
            self.names.add(new)
        return ""


def test_names_and_ports_come_from_options(realsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(realsys, "up", lambda names, fresh: calls.append(("up", names, fresh)))
    monkeypatch.setattr(realsys, "down", lambda names: calls.append(("down", names)))
    monkeypatch.setattr(realsys, "status", lambda names: calls.append(("status", names)))
    monkeypatch.setattr(realsys, "init", lambda port=None: calls.append(("init", port)) or ("t", "v"))

    assert realsys.main(["--pg-port", "5433", "--pg-host", "db.local", "up", "--tryton-db", "ann_tryton",
                         "--vendure-db", "ann_vendure", "--tryton-port", "8100", "--vendure-port", "3100",
                         "--fresh"]) == 0
    assert realsys.PG_PORT == 5433 and realsys.PG_HOST == "db.local"
    assert realsys._pg_env()["PGPORT"] == "5433"
    (_, names, fresh), = calls
    assert (names.tryton_db, names.vendure_db, names.tryton_port, names.vendure_port, fresh) == (
        "ann_tryton", "ann_vendure", 8100, 3100, True)
    assert names.run_dir == realsys.VAR / "run" / "ann_tryton+ann_vendure"

    assert realsys.main(["down", "--tryton-db", "ann_tryton", "--vendure-db", "ann_vendure"]) == 0
    assert realsys.main(["init", "--vendure-port", "3200"]) == 0
    assert calls[1][1].tryton_db == "ann_tryton" and calls[2] == ("init", 3200)
    # the defaults stay what they were
    assert realsys.main(["status"]) == 0
    assert (calls[3][1].tryton_db, calls[3][1].vendure_db) == ("erpsync_tryton", "erpsync_vendure")


@pytest.mark.parametrize("argv", [
    ["up", "--tryton-db", "erpsync_tryton_tpl_b9c181025e"],  # a template's name
    ["up", "--vendure-db", "postgres"],
    ["up", "--tryton-db", 'x"; DROP DATABASE y; --'],
    ["up", "--tryton-db", "same", "--vendure-db", "same"],
    ["up", "--vendure-port", "8000"],  # the Tryton port
    ["up", "--tryton-port", "70000"],
])
def test_names_that_would_touch_what_is_not_its_own_are_refused(realsys: Any, argv: list[str],
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(realsys, "up", lambda names, fresh: pytest.fail("must not start"))
    assert realsys.main(argv) == 1
    assert "error:" in capsys.readouterr().err


def test_up_clones_and_starts_only_its_own_names_on_the_ports_given(realsys: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pg = FakePg(["erpsync_tryton_tpl_aaa", "erpsync_vendure_tpl_bbb", "erpsync_tryton", "bob_db"])
    monkeypatch.setattr(realsys, "_psql", pg)
    monkeypatch.setattr(realsys, "init", lambda port=None: ("erpsync_tryton_tpl_aaa", "erpsync_vendure_tpl_bbb"))
    started: list[Any] = []

    class _Pair:
        tryton = vendure = type("S", (), {"name": "x", "proc": type("P", (), {"pid": 1})()})()

        def connections(self) -> dict[str, Any]:
            return {}

    def start_pair(t: str, v: str, **kw: Any) -> Any:
        started.append((t, v, kw["tryton_port"], kw["vendure_port"]))
        return _Pair()

    monkeypatch.setattr(realsys, "start_pair", start_pair)
    realsys.up(realsys.Names("ann_tryton", "ann_vendure", 8100, 3100), fresh=True)
    assert started == [("ann_tryton", "ann_vendure", 8100, 3100)]
    touched = {part.split('"')[1] for part in pg.sql if part.startswith(("DROP", "CREATE", "ALTER"))}
    assert touched == {"ann_tryton", "ann_vendure"}
    assert {"erpsync_tryton", "bob_db"} <= pg.names  # someone else's personal database stays


def test_vendure_template_is_built_on_the_port_given(realsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pg = FakePg([])
    monkeypatch.setattr(realsys, "_psql", pg)
    ports: list[Any] = []

    class _Server:
        info = {"admin_api": "http://127.0.0.1:3100/admin-api"}

        def stop(self) -> None:
            pass

    def start_vendure(db: str, port: Any = None, log_path: Any = None, **kw: Any) -> Any:
        ports.append(port)
        return _Server()

    monkeypatch.setattr(realsys, "start_vendure", start_vendure)
    monkeypatch.setattr(realsys, "seed_vendure", lambda api: None)
    monkeypatch.setattr(realsys, "vendure_template", lambda: "erpsync_vendure_tpl_new")
    assert realsys.init_vendure(3100) == "erpsync_vendure_tpl_new"
    assert ports == [3100]


def test_stale_templates_are_dropped_only_when_this_installation_built_them(realsys: Any,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # on the shared server: another checkout's templates of other pins, and our own older one
    pg = FakePg(["erpsync_tryton_tpl_theirs1", "erpsync_tryton_tpl_theirs2", "erpsync_tryton_tpl_oldours",
                 "erpsync_tryton_tpl_x_building"])
    monkeypatch.setattr(realsys, "_psql", pg)
    realsys.remember_template("tryton", "erpsync_tryton_tpl_oldours")
    realsys.remember_template("tryton", "erpsync_tryton_tpl_new")
    assert realsys.drop_stale_templates("tryton", "erpsync_tryton_tpl_new") == ["erpsync_tryton_tpl_oldours"]
    assert pg.names == {"erpsync_tryton_tpl_theirs1", "erpsync_tryton_tpl_theirs2", "erpsync_tryton_tpl_x_building"}
    assert not any(s.startswith("SELECT datname") for s in pg.sql)  # no database is found by a prefix
    assert realsys._built() == {"tryton": ["erpsync_tryton_tpl_new"]}
