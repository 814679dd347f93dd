"""docker-compose.yaml is for users (Docker does not run here): check what `docker compose up`
relies on, and let Compose itself validate the file where a Compose binary is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker", "airflow-init"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_every_service_of_the_stack_is_there(compose: dict) -> None:
    assert AIRFLOW_SERVICES | {"postgres", "redis", "sandbox", "mailsink"} <= set(compose["services"])


def test_airflow_runs_celery_on_postgres_and_redis(compose: dict) -> None:
    for name in AIRFLOW_SERVICES:
        env = compose["services"][name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert "@postgres/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://"), name
        for conn in ("AIRFLOW_CONN_ERP_DEFAULT", "AIRFLOW_CONN_STOREFRONT_DEFAULT", "AIRFLOW_CONN_ERPSYNC_STATE",
                     "AIRFLOW_CONN_SMTP_DEFAULT"):
            assert conn in env, (name, conn)


def test_working_copy_is_mounted_where_the_image_installed_erpsync(compose: dict) -> None:
    dockerfile = (ROOT / compose["x-airflow-common"]["build"]["dockerfile"]).read_text()
    assert "FROM apache/airflow:3.3.2-python3.11" in dockerfile
    assert "-r /opt/erpsync/requirements.txt" in dockerfile and "-e /opt/erpsync" in dockerfile
    for name in AIRFLOW_SERVICES:
        mounts = {m.split(":")[0]: m.split(":")[1] for m in compose["services"][name]["volumes"]}
        assert mounts["./dags"] == "/opt/airflow/dags", name
        assert mounts["./include"] == "/opt/erpsync/include", name
        assert mounts["./plugins"] == "/opt/erpsync/plugins", name


def test_image_pins_the_same_airflow_as_requirements(compose: dict) -> None:
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().split() if "==" in line)
    assert compose["x-airflow-common"]["image"].endswith(":" + pins["apache-airflow"])


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_itself_accepts_the_file() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no docker compose / docker-compose binary here (apt-get install docker-compose)")
    done = subprocess.run([*cli, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr


def _native_celery_env() -> dict[str, str]:
    """The environment `make up-celery` runs Airflow with (scripts/airflow-env.sh, ERPSYNC_CELERY=1)."""
    script = 'source scripts/airflow-env.sh && env -0'
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ERPSYNC"))}
    env["ERPSYNC_CELERY"] = "1"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    return dict(item.split("=", 1) for item in done.stdout.split("\0") if "=" in item)


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].split("+", 1)[0]


def test_compose_and_make_up_celery_run_the_same_stack(compose: dict) -> None:
    """docker-compose.yaml and the native `make up-celery` are the same topology: CeleryExecutor,
    metadata DB, Celery result backend and state store on PostgreSQL, Redis as the broker, two
    workers, and the tasks' state store Connection on the same database as the CLI's."""
    import json

    native = _native_celery_env()
    assert native["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert native["ERPSYNC_CELERY_WORKERS"] == "2"
    assert compose["services"]["airflow-worker"]["deploy"]["replicas"] == int(native["ERPSYNC_CELERY_WORKERS"])
    env = compose["services"]["airflow-worker"]["environment"]
    for key in ("AIRFLOW__CORE__EXECUTOR",):
        assert env[key] == native[key], key
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__CELERY__BROKER_URL",
                "ERPSYNC_STATE_URL"):
        assert _scheme(env[key]) == _scheme(native[key]), (key, env[key], native[key])
    assert _scheme(native["ERPSYNC_STATE_URL"]) == "postgresql"
    assert _scheme(native["AIRFLOW__CELERY__BROKER_URL"]) == "redis"
    # the tasks (Connection erpsync_state) and the CLI (ERPSYNC_STATE_URL) use one database, in both
    native_conn = json.loads(native["AIRFLOW_CONN_ERPSYNC_STATE"])
    assert native_conn["host"] == native["ERPSYNC_STATE_URL"]
    compose_conn = json.loads(env["AIRFLOW_CONN_ERPSYNC_STATE"])
    assert env["ERPSYNC_STATE_URL"].endswith("/" + compose_conn["schema"])
    # the metadata DB and the state store are separate databases in both
    for e in (env, native):
        assert e["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].rsplit("/", 1)[1] != e["ERPSYNC_STATE_URL"].rsplit("/", 1)[1]
