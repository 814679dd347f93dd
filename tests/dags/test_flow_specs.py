"""One declaration per flow (issue 19): each DAG is what its ``FlowSpec`` says (schedule, Assets,
pool, deadline, tags), every registry keyed by flow name is derived from the specs, and README's
flow table names the same DAGs with the same cadences."""

from __future__ import annotations

import os
import re

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from airflow.dag_processing.dagbag import DagBag  # noqa: E402  (after isolate(): AIRFLOW_HOME first)

from erpsync.flows.specs import SPECS, cron_cadence  # noqa: E402

README = airflow_home.REPO / "README.md"


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    with pytest.MonkeyPatch.context() as mp:  # parsing needs no connection; the default sweep cron
        for key in [k for k in os.environ if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "ERPSYNC_SWEEP_CRON_"))]:
            mp.delenv(key)
        yield DagBag(dag_folder=str(airflow_home.DAGS))


def _time_part(timetable):
    return getattr(timetable, "timetable", timetable)


def _uris(objects) -> set[str]:
    return {str(getattr(o, "uri", "")).rstrip("/") for o in objects}


def test_one_spec_per_dag(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_each_dag_is_what_its_spec_says(dagbag: DagBag, name: str) -> None:
    from erpsync_airflow.defaults import TAGS, deadline_interval, pool_of

    spec, dag = SPECS[name], dagbag.dags[name]
    assert set(dag.tags) == {*TAGS, *spec.tags}
    assert getattr(_time_part(dag.timetable), "expression", None) == spec.schedule
    deadline = dag.deadline[0] if isinstance(dag.deadline, list | tuple) else dag.deadline
    if spec.schedule:
        assert deadline.interval == (spec.deadline or deadline_interval(name, spec.schedule))
    else:
        assert deadline is None
    pools = {t.pool for t in dag.tasks if t.task_id != "review_dead_letters"}
    assert pools == {pool_of(name) or "default_pool"}
    produced = _uris(o for t in dag.tasks for o in t.outlets)
    assert (spec.produces in produced) if spec.produces else not produced
    condition = getattr(dag.timetable, "asset_condition", None)
    consumed = _uris(getattr(condition, "objects", None) or ([condition] if condition is not None else []))
    assert consumed == ({spec.consumes} if spec.consumes else set())


def test_registries_are_views_of_the_specs() -> None:
    from erpsync import watchdog
    from erpsync.flows.base import NOT_REPLAYED
    from erpsync.flows.migration import ENTITIES
    from erpsync.flows.replay import REPLAYERS
    from erpsync.quality import settings, suites
    from erpsync_airflow.defaults import DEADLINES, POOL_SYSTEMS

    assert POOL_SYSTEMS == {n: s.pool_system for n, s in SPECS.items()}
    assert DEADLINES == {n: s.deadline for n, s in SPECS.items() if s.deadline}
    assert settings.FLOW_MAX_BAD_SHARE == {n: s.max_bad_share for n, s in SPECS.items() if s.max_bad_share}
    assert set(REPLAYERS) == {n for n, s in SPECS.items() if s.replay == "records"}
    assert set(NOT_REPLAYED) == {n for n, s in SPECS.items() if s.replay == "rerun"}
    assert {e.name: (e.flow, e.direction) for e in ENTITIES.values()} == {
        s.migration_entity: (n, s.direction) for n, s in SPECS.items() if s.migration_entity}
    assert watchdog.DEFAULT_CADENCES == {n: cron_cadence(s.schedule) for n, s in SPECS.items()
                                         if s.schedule and s.watched}
    assert "customer_erasure" in watchdog.DEFAULT_CADENCES  # the hand-copied table missed it
    for s in SPECS.values():
        if s.quality_suite:
            assert suites.suite(s.quality_suite), f"{s.name}: no quality suite {s.quality_suite!r}"
        assert (s.quality_suite is None) == (s.max_bad_share is None), s.name


def test_readme_flow_table_matches_the_specs() -> None:
    """README's table: the same DAGs, in the specs' order, each with the cadence its spec's cron
    says; a flow that also runs on an Asset says its cadence among the rest (and which DAG
    produces the Asset)."""
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", README.read_text(), flags=re.M)
    table = {name: cadence.strip() for name, cadence in rows if name in SPECS or name.endswith(("_sync", "_check"))}
    assert list(table) == list(SPECS)
    producers = {s.produces: n for n, s in SPECS.items() if s.produces}
    for name, cadence in table.items():
        spec = SPECS[name]
        expected = spec.cadence_text
        if spec.consumes in producers:
            expected += f", and after `{producers[spec.consumes]}`"
        if spec.consumes:  # events or the cron: the cron's cadence is said among the rest
            said = re.findall(r"every minute|every \d+ min|hourly|nightly \d\d:\d\d|on demand", cadence)
            assert said == [spec.cadence_text], f"README says {name} runs {cadence!r}; its spec: {expected!r}"
            assert expected in cadence or spec.consumes not in producers, f"README: {name} {cadence!r}"
        else:
            assert cadence == expected, f"README says {name} runs {cadence!r}; its spec says {expected!r}"


@pytest.mark.parametrize(("cron", "text"), [
    ("* * * * *", "every minute"), ("*/15 * * * *", "every 15 min"), ("5 * * * *", "hourly"),
    ("30 2 * * *", "nightly 02:30"), (None, "on demand"),
])
def test_cadence_wording(cron: str | None, text: str) -> None:
    from erpsync.flows.specs import cron_text

    assert cron_text(cron) == text


def test_a_schedule_the_specs_cannot_size_is_refused() -> None:
    with pytest.raises(ValueError, match="a flow's schedule is"):
        cron_cadence("0 9 * * mon")
