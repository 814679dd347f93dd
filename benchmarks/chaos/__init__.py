"""Chaos suite: the writing flows against the real sandbox while things go wrong.

Each scenario reseeds the sandbox, injects its faults, runs ``orders_sync`` the way Airflow would
(task retries with the same run id, a run per simulated minute), clears the faults, and then
counts, against the ERP itself:

* ``orders``: paid, not cancelled storefront orders (what must reach the ERP);
* ``delivered``: those with a sales order in the ERP;
* ``duplicated``: sales orders beyond the first per storefront order (plus the ERP's own count);
* ``lost``: orders neither delivered nor in the dead letters (nor still in the outbox);
* ``dead_letters``: open dead letters of the flow (each with its reason).

The other writing flows (``benchmarks/chaos/flows.py``) are counted the same way in their target:
customers_sync (ERP customers per storefront customer), shipments_sync (store fulfillments per
shipped package and tracking number) and returns_sync (ERP RMAs and credit memos per store
return, store refunds per return), each under commit-then-timeout of its writes, and returns_sync
during a 10-minute ERP outage.

``python -m benchmarks chaos`` runs them all at full size; ``tests/integration/test_chaos_suite.py``
runs each with a few hundred records in the default test command. Target: 0 duplicated, 0 lost.
"""

from benchmarks.chaos.flows import FLOW_SCENARIOS
from benchmarks.chaos.scenarios import SCENARIOS, ChaosResult, run_scenario

SCENARIOS.update(FLOW_SCENARIOS)  # customers_sync, shipments_sync, returns_sync (benchmarks/chaos/flows.py)

__all__ = ["SCENARIOS", "ChaosResult", "run_scenario"]
