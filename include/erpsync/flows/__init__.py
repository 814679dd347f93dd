"""Flows: one plain function ``run(ctx: FlowContext) -> RunSummary`` per module.

``customers`` (customers_sync) and ``orders`` (orders_sync). Flows fetch through the adapters,
map through ``erpsync.mappings``, decide through ``erpsync.rules`` and remember through the state
store; they never import Airflow.
"""
