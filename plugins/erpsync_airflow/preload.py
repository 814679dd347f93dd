"""Pre-import what every erpsync task imports, in the process that forks the task processes
(issue 21, the latency budget).

A task process imports Great Expectations and pandas (the quality gate) and the erpsync core:
measured 5-12 s and ~220 MB in a fresh interpreter on a 2-core machine, before the first record
is read. With the LocalExecutor (and Celery workers) on Linux, task processes are forked from the
scheduler's executor workers (``multiprocessing`` fork, then the supervisor's ``os.fork()``), so
modules imported in the scheduler before its executor starts are already loaded in every task,
and their pages are shared copy-on-write instead of loaded again per task.

``plugins/airflow_local_settings.py`` calls :func:`preload_for_tasks` in every Airflow process;
it imports only in ``airflow scheduler`` and ``airflow celery worker``, and only the modules named
by ``ERPSYNC_PRELOAD_TASK_MODULES`` (default: :data:`DEFAULT`; ``off`` to disable). An entry
``module:function`` also calls the function once imported: ``erpsync.quality.gx:preload`` loads
the GX project's context (``gx/``), so a task's first quality gate neither imports GX nor loads
it (measured by ``python -m benchmarks gate``). A module that fails to import is logged and
skipped: the task imports it itself, as before. What was loaded is then frozen out of the garbage
collector (``gc.freeze()``): a forked task neither scans those objects in its collections nor, by
touching them, copies their pages (measured: without it a forked inventory cycle took 2-3 times
the CPU of a fresh process's).
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import time

DEFAULT = ("pandas", "great_expectations", "erpsync.quality.gx:preload", "erpsync.flows.orders",
           "erpsync.flows.events")
#: the Airflow commands whose process forks task processes
FORKING_COMMANDS = (("scheduler",), ("celery", "worker"))

log = logging.getLogger("erpsync_airflow.preload")


def modules() -> tuple[str, ...]:
    raw = os.environ.get("ERPSYNC_PRELOAD_TASK_MODULES", "").strip()
    if raw.lower() in ("off", "0", "false", "no", "none"):
        return ()
    return tuple(m.strip() for m in raw.split(",") if m.strip()) if raw else DEFAULT


def forks_tasks(argv: list[str]) -> bool:
    args = [a for a in argv[1:] if not a.startswith("-")]
    return any(tuple(args[: len(cmd)]) == cmd for cmd in FORKING_COMMANDS)


def preload_for_tasks(argv: list[str] | None = None) -> list[str]:
    """Import :func:`modules` when this process forks tasks; return what was imported."""
    argv = sys.argv if argv is None else argv
    if not argv or not os.path.basename(argv[0]).startswith("airflow") or not forks_tasks(argv):
        return []
    done = []
    for name in modules():
        started = time.perf_counter()
        module, _, function = name.partition(":")
        try:
            __import__(module)
            if function:
                getattr(sys.modules[module], function)()
        except Exception as exc:  # the task imports it itself, as without the preload
            log.warning("erpsync preload: %s not imported: %s: %s", name, type(exc).__name__, exc)
            continue
        done.append(name)
        log.info("erpsync preload: %s imported in %.2f s", name, time.perf_counter() - started)
    if done:
        gc.collect()
        gc.freeze()  # the preloaded objects: never collected, so never touched by a forked task's GC
    return done
