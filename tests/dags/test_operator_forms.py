"""The Trigger forms of the on-demand DAGs submit with their defaults: Airflow's form sends an
empty optional field as null, so every optional Param must accept null (and the task, not the
form, says what is missing). Every flow that dead-letters records has a review task after it."""

from __future__ import annotations

import copy

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from airflow.dag_processing.dagbag import DagBag  # noqa: E402

OPTIONAL = {
    "dead_letter_replay": ["ids", "flow", "reason", "since", "until", "run_id"],
    "historical_migration": ["date_from", "date_to", "job_id", "erp_rps", "storefront_rps"],
}
REVIEWED = ["orders_sync", "customers_sync", "catalog_sync", "shipments_sync", "returns_sync", "customer_erasure"]


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    bag = DagBag(dag_folder=str(airflow_home.DAGS))
    assert bag.import_errors == {}
    return bag


@pytest.mark.parametrize("dag_id", sorted(OPTIONAL))
def test_the_form_submits_with_its_defaults_and_empty_optional_fields(dagbag: DagBag, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    dag.params.validate()  # the defaults as they are
    params = copy.deepcopy(dag.params)
    for key in OPTIONAL[dag_id]:
        params[key] = None  # what the form sends for a field left empty
    params.validate()


def test_replay_ids_win_over_the_filter_which_is_not_parsed() -> None:
    from erpsync.errors import ConfigError
    from erpsync.flows.replay import ReplayFilter

    flt = ReplayFilter.from_params({"ids": [3, 4], "since": "not a time", "until": "", "flow": None})
    assert flt.ids == (3, 4) and flt.since is None
    with pytest.raises(ConfigError, match="since='yesterday' is not an ISO 8601 time"):
        ReplayFilter.from_params({"since": "yesterday"})


@pytest.mark.parametrize("dag_id", REVIEWED)
def test_flows_that_dead_letter_are_followed_by_a_review_task(dagbag: DagBag, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    review = dag.get_task("review_dead_letters")
    (upstream,) = review.upstream_task_ids
    assert upstream != "review_dead_letters" and not review.downstream_task_ids
    assert review.pool == "default_pool"  # it calls no external system


def test_review_fails_past_the_threshold_with_the_ids_and_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from erpsync_airflow.runtime import run_review

    letters = {"dead_letters": [[7, "O100003", "unknown_sku: SKU-000055"], [9, "O100005", "bad_currency: 'XXX'"]]}
    monkeypatch.delenv("ERPSYNC_REVIEW_MAX_DEAD_LETTERS", raising=False)
    assert run_review("orders_sync", {"dead_letters": []}, {}) == {"dead_letters": 0, "threshold": 0}
    with pytest.raises(AirflowFailException) as failed:
        run_review("orders_sync", letters, {})
    line = str(failed.value)
    assert "dead-lettered 2 record(s) (unknown_sku x1, bad_currency x1)" in line
    assert "#7 O100003: unknown_sku: SKU-000055" in line and "#9 O100005: bad_currency" in line
    assert '"ids": [7, 9]' in line  # the Params to replay them
    monkeypatch.setenv("ERPSYNC_REVIEW_MAX_DEAD_LETTERS", "2")
    assert run_review("orders_sync", letters, {})["dead_letters"] == 2  # within the threshold: green
    monkeypatch.setenv("ERPSYNC_REVIEW_MAX_DEAD_LETTERS", "two")
    with pytest.raises(AirflowFailException, match="ERPSYNC_REVIEW_MAX_DEAD_LETTERS='two': a whole number"):
        run_review("orders_sync", letters, {})
