"""The bridge between an Airflow task and a core flow.

A task body is one call::

    return run_flow("orders_sync", orders.run, context)

``flow_context`` builds the core's :class:`~erpsync.flows.base.FlowContext` from the Airflow task
context (connections through the hooks, the data interval, params, a logger that writes to the
task log) and turns configuration mistakes into one clear line instead of a stack trace.
``run_flow`` runs the flow inside it, ends the task log with ``summary.render()`` and records the
run metrics in the state store.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from erpsync_airflow.hooks import ErpHook, MissingConnectionError, StateStoreHook, StorefrontHook

if TYPE_CHECKING:
    from erpsync.flows.base import FlowContext, RunSummary


def _fail(log: logging.Logger, line: str) -> AirflowFailException:
    """Log the one line that says what is wrong and how to fix it; fail without retries."""
    log.error(line)
    return AirflowFailException(line)


def _run_type(context: Mapping[str, Any]) -> str:
    """Airflow's run type as the core knows it: "manual", "backfill" or "scheduled".

    A run triggered by an operator counts as manual (its interval means nothing to the flow).
    """
    dag_run = context.get("dag_run")
    run_type = str(getattr(dag_run, "run_type", "") or "").lower()
    if "backfill" in run_type:
        return "backfill"
    if "manual" in run_type or "operator_triggered" in run_type:
        return "manual"
    return "scheduled"


def _interval(context: Mapping[str, Any]) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The data interval of a scheduled or backfill run; (None, None) for a manual run.

    Airflow 3 gives manual runs an interval too (the one before the trigger time); the flows read
    "everything since the cursor" when there is none, which is what a manual run is for.
    """
    if _run_type(context) == "manual":
        return None, None
    return context.get("data_interval_start"), context.get("data_interval_end")


def _close(obj: Any) -> None:
    """Close an adapter's HTTP session (``adapter.close()`` or ``adapter.http.close()``)."""
    close = getattr(obj, "close", None) or getattr(getattr(obj, "http", None), "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()


@contextlib.contextmanager
def flow_context(flow: str, context: Mapping[str, Any]) -> Iterator[FlowContext]:
    """Yield the core FlowContext for ``flow`` built from the Airflow task ``context``.

    A missing Connection, a ConfigError or refused credentials (anywhere in the block) end the
    task with one log line naming the problem and its fix, and no retries: retrying cannot help.
    Transient errors propagate, so Airflow's retries apply.
    """
    from erpsync.errors import AuthError, ConfigError
    from erpsync.flows.base import FlowContext

    log = logging.getLogger(f"airflow.task.erpsync.{flow}")
    erp = storefront = None
    try:
        try:
            erp = ErpHook().get_conn()
            storefront = StorefrontHook().get_conn()
            store = StateStoreHook().get_conn()
        except MissingConnectionError as exc:
            raise _fail(log, f"{flow}: {exc}") from None
        start, end = _interval(context)
        ctx = FlowContext(
            flow=flow,
            run_id=str(context.get("run_id") or ""),
            store=store,
            erp=erp,
            storefront=storefront,
            interval_start=start,
            interval_end=end,
            params=dict(context.get("params") or {}),
            log=log,
            run_type=_run_type(context),
        )
        yield ctx
    except ConfigError as exc:
        raise _fail(log, f"{flow}: configuration error: {exc}") from None
    except AuthError as exc:
        raise _fail(
            log,
            f"{flow}: credentials refused by {exc.system or 'a system'}: {exc} "
            "(fix the login/password/token of its Airflow connection, then clear the task)",
        ) from None
    finally:
        _close(erp)
        _close(storefront)


def run_flow(flow: str, run: Callable[[FlowContext], RunSummary], context: Mapping[str, Any]) -> dict:
    """Run one core flow as the body of an Airflow task; return the summary for XCom."""
    started = dt.datetime.now(dt.UTC)
    with flow_context(flow, context) as ctx:
        summary = run(ctx)
        finished = dt.datetime.now(dt.UTC)
        ctx.log.info("%s", summary.render())
        record_run(ctx, summary, started, finished, context)
        return summary.to_dict()


def record_run(
    ctx: FlowContext,
    summary: RunSummary,
    started: dt.datetime,
    finished: dt.datetime,
    context: Mapping[str, Any],
) -> None:
    """Store the run's counts (the watchdog and `erpsync` CLI read them); never fail the task."""
    ti = context.get("ti")
    extra = {
        "dead_letters": len(summary.dead_letters),
        "try_number": getattr(ti, "try_number", None),
        "duration_s": round((finished - started).total_seconds(), 3),
    }
    try:
        ctx.store.record_run(
            ctx.flow,
            ctx.run_id,
            started,
            finished,
            summary.done,
            summary.failed,
            summary.quarantined,
            summary.skipped,
            extra=extra,
        )
    except Exception:
        ctx.log.warning("%s: could not record the run metrics", ctx.flow, exc_info=True)
