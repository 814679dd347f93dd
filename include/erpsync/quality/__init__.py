"""Quality gates: an expectation suite per canonical entity (kept as code), run with Great
Expectations before a flow loads its batch.

``suites`` declares the checks (plain data, no GX import), ``rows`` flattens canonical records into
the columns the checks read, ``gx`` runs them with Great Expectations (imported lazily: it takes
seconds), and ``gate`` quarantines the failing records and fails a batch that is too bad.
"""

from __future__ import annotations

from erpsync.quality.gate import GateResult, QualityGateFailed, run_gate

__all__ = ["GateResult", "QualityGateFailed", "run_gate"]
