"""Quality gates: an expectation suite per canonical entity (kept as code), run with Great
Expectations before a flow loads its batch.

``suites`` declares the checks (plain data, no GX import) and flattens canonical records into the
columns the checks read, ``project`` writes them into the GX project ``gx/`` (suites, validation
definitions, checkpoints), ``gx`` runs them with Great Expectations from that project (imported
lazily: it takes seconds), and ``gate`` quarantines the failing records and fails a batch that is
too bad.
"""

from __future__ import annotations

from erpsync.quality.gate import GateResult, QualityGateFailed, run_gate

__all__ = ["GateResult", "QualityGateFailed", "run_gate"]
