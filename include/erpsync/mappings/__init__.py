"""Mappings: raw records of one system <-> canonical records, as declarative specs.

One module per system (``storefront_sandbox``, ``erp_sandbox``); each declares field lists and
small transforms run by :mod:`erpsync.mappings.engine`, and raises ``MappingError`` naming the
record, field and rule when a record cannot be mapped.
"""
