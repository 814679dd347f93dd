"""dead_letter_replay: replay dead letters from the Airflow UI (Trigger DAG with Params)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, task

from erpsync_airflow.defaults import START_DATE, dag_tags, flow_spec, task_defaults

SPEC = flow_spec("dead_letter_replay")  # schedule, pool, deadline, tags: erpsync.flows.specs


@dag(
    dag_id=SPEC.name,
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(SPEC.name),
    tags=dag_tags(SPEC),
    params={
        "dry_run": Param(True, type="boolean",
                         description="preview what would be sent, write nothing; untick to replay for real"),
        "ids": Param([], type=["null", "array"], items={"type": "integer"},
                     description="dead letter ids (the task log of each flow lists them); or use the filter below"),
        "flow": Param(None, type=["null", "string"], description="filter: flow, e.g. orders_sync"),
        "reason": Param(None, type=["null", "string"], description="filter: substring of the reason, e.g. unknown_sku"),
        "since": Param(None, type=["null", "string"], description="filter: last seen at or after (ISO 8601, UTC)"),
        "until": Param(None, type=["null", "string"], description="filter: last seen before (ISO 8601, UTC)"),
        "run_id": Param(None, type=["null", "string"], description="filter: the run that dead-lettered them"),
        "limit": Param(500, type="integer", minimum=1, maximum=10000, description="at most this many (filter)"),
        "flow_params": Param({}, type="object",
                             description='params for the flows, e.g. {"guest_policy": "shared_account"}'),
    },
    doc_md="""
### dead_letter_replay
Replays dead letters through the flow that failed them, exactly once (the ledger and the look-up
by key make a second replay a no-op); a success resolves the dead letter, a new failure bumps its
attempts with the new reason.

1. Each flow's task log ends with its dead letters and the Params to paste here, e.g.
   `{"ids": [12, 13], "dry_run": true}`.
2. Trigger with `dry_run` on: the log shows, per dead letter, the payload that would be sent.
3. Trigger again with `dry_run` off.

Select by `ids`, or by filter (`flow`, `reason`, `since`/`until`, `run_id`); an empty selection
is refused, and with `ids` the filter fields are ignored. Every filter field is optional: the form
submits with its defaults. A replay whose records fail again ends `failed`, its log listing each
id with its new reason (a dry run lists `would_fail` with the reason and stays green: it only
previews). The erpsync **Dead letters** page (Airflow menu) does the same per dead letter. To edit a payload first, use the CLI: `erpsync dead-letters replay --id N
--payload-file edited.json`. Logic: `include/erpsync/flows/replay.py`.
""",
)
def dead_letter_replay() -> None:
    @task
    def replay_dead_letters(**context: Any) -> dict:
        """Replay (or preview) the selected dead letters; returns the counts and outcomes."""
        from erpsync_airflow.runtime import run_dead_letter_replay

        return run_dead_letter_replay(context)

    replay_dead_letters()


dead_letter_replay()
