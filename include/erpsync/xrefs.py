"""Operator edits of cross-references (SKU <-> ERP item, store location <-> warehouse, customer):
bind and unbind with who did it in the audit log. Used by ``erpsync xref`` and the console.

A binding to nothing is refused (``StateStore.upsert_xref`` raises ValueError for an empty,
blank or "None"/"null" id; the table has the same CHECK): the caller shows that message.
"""

from __future__ import annotations

from typing import Any

#: the audit log's system for operator actions (the console uses the same)
OPERATOR = "operator"


def _correlation(system: str, entity: str, external_id: str) -> str:
    return f"xref:{system}:{entity}:{external_id}"


def bind(store: Any, *, system: str, entity: str, external_id: str, internal_id: str, by: str) -> tuple[Any, Any]:
    """Bind (or rebind) ``external_id`` to ``internal_id``; (new xref, previous xref or None).
    Raises ValueError for an id that is not one (nothing is written then)."""
    if not (by or "").strip():
        raise ValueError("say who binds it (--by): every change to a cross-reference is audited")
    system, entity = system.strip(), entity.strip()
    if not system or not entity:
        raise ValueError("give the system (erp | storefront) and the entity (e.g. item, customer, warehouse)")
    external_id, internal_id = str(external_id).strip(), str(internal_id).strip()
    before = store.get_xref(system, entity, external_id)
    new = store.upsert_xref(system, entity, external_id, internal_id)  # ValueError for a non-id
    store.audit(flow="xref", system=OPERATOR, operation="xref_bind", entity=entity, external_id=external_id,
                request={"by": by, "system": system, "internal_id": internal_id,
                         "was": before.internal_id if before else None},
                response=None, duration_ms=None, result="bound",
                correlation_id=_correlation(system, entity, external_id))
    return new, before


def unbind(store: Any, *, system: str, entity: str, external_id: str, by: str) -> Any:
    """Remove a binding; the removed xref, or None when there was none (then nothing is audited)."""
    if not (by or "").strip():
        raise ValueError("say who unbinds it (--by): every change to a cross-reference is audited")
    removed = store.delete_xref(system, entity, str(external_id).strip())
    if removed is not None:
        store.audit(flow="xref", system=OPERATOR, operation="xref_unbind", entity=entity,
                    external_id=removed.external_id,
                    request={"by": by, "system": system, "was": removed.internal_id},
                    response=None, duration_ms=None, result="unbound",
                    correlation_id=_correlation(system, entity, removed.external_id))
    return removed


def history(store: Any, system: str, entity: str, external_id: str, limit: int = 20) -> list[Any]:
    """The audited changes of one binding, newest first."""
    return store.list_audit(correlation_id=_correlation(system, entity, external_id), limit=limit)
