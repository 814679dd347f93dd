"""An Airflow home of the test session's own, so tests never touch ~/airflow or var/airflow.

Airflow reads AIRFLOW_HOME when ``airflow`` is first imported, so ``isolate()`` runs at the import
of the test modules that need Airflow, before they import it; the metadata DB is migrated once
per session by ``migrate()``.
"""

from __future__ import annotations

import atexit
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
PLUGINS = REPO / "plugins"
_KEY = "ERPSYNC_TEST_AIRFLOW_HOME"


def isolate() -> pathlib.Path:
    """Point Airflow at a temporary home (the same one for the whole session); return it."""
    home = os.environ.get(_KEY)
    if not home:
        home = tempfile.mkdtemp(prefix="erpsync-airflow-")
        os.environ[_KEY] = home
        atexit.register(shutil.rmtree, home, ignore_errors=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        }
    )
    if "airflow.configuration" in sys.modules:
        from airflow.configuration import AIRFLOW_HOME

        if os.path.realpath(AIRFLOW_HOME) != os.path.realpath(home):
            raise RuntimeError(
                f"airflow was imported with AIRFLOW_HOME={AIRFLOW_HOME} before the test home was set: "
                "call tests.dags.airflow_home.isolate() before anything imports airflow"
            )
    return pathlib.Path(home)


def migrate() -> None:
    """``airflow db migrate`` once per session (about 4 s on SQLite)."""
    home = isolate()
    stamp = home / ".migrated"
    if stamp.exists():
        return
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    stamp.touch()
