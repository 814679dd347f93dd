"""customer_erasure: a customer's erasure request (GDPR art. 17 / CCPA) reaches the ERP as it allows.

Per pending request in the store: find the ERP customers bound to that storefront customer (the
cross-reference; for a guest, the customer ``guest:<e-mail>`` made under the ``create`` guest
policy), anonymise each (the ERP keeps its invoices and orders, so it replaces the personal fields
rather than deleting), forget what erpsync itself keeps about the person (the guest xref, whose
key holds the e-mail; ledger answers and dead-letter payloads are masked), then close the request
in the store.

Requests are read through the storefront adapter's mapping (``erasure_request``: ``id``,
``customer_id``, ``email``, ``requested_at``) and the ERP does what it allows in its adapter's
``anonymize_customer`` (the sandbox replaces the fields; Tryton runs its own "Erase" wizard, which
refuses a party with pending sales or shipments: the refusal holds the request in the dead
letters with Tryton's reason, and the next run tries again). How a store keeps requests is its
mapping's business (Vendure has none: a customer group stands for them).

Nothing personal is written on the way: the audit rows and dead letters of this flow carry the
request id, the storefront customer id and ERP customer numbers only. An ERP customer that only
*matches* by e-mail (not bound to this storefront customer, e.g. a B2B account the ERP owns) is not
touched: the request waits in the dead letters (``erasure_needs_review``) for a person.
"""

from __future__ import annotations

import hashlib
from typing import Any

from erpsync.connectors.capabilities import lacking, say_unsupported
from erpsync.connectors.registry import storefront_mapping
from erpsync.errors import PermanentError, TransientError
from erpsync.flows.base import FlowContext, RunSummary, audit, dead_letter, idempotent_write
from erpsync.model import normalise_email
from erpsync.rules.guests import guest_external_id

FLOW = "customer_erasure"
ENTITY = "erasure_request"


def safe(raw: dict[str, Any]) -> dict[str, Any]:
    """The request without personal data (what audit rows and dead letters may keep)."""
    return {"id": raw.get("id"), "customer_id": raw.get("customer_id"), "requested_at": raw.get("requested_at")}


def subject_ref(email: str) -> str:
    """A stable pseudonym of the person, to correlate rows without keeping the address."""
    return "sha256:" + hashlib.sha256(normalise_email(email).encode()).hexdigest()[:16]


def run(ctx: FlowContext) -> RunSummary:
    summary = RunSummary(flow=ctx.flow, run_id=ctx.run_id)
    if lacking(ctx.storefront, "erasure"):  # the capability matrix: said once, nothing read
        say_unsupported(ctx, summary, "storefront", "erasure", "no erasure request is read: handle them by hand")
        return summary
    as_request = storefront_mapping(ctx.storefront).erasure_request
    if lacking(ctx.erp, "erasure"):  # the requests stay pending in the store: nothing lost
        pending = ctx.storefront.list_erasure_requests(status="pending")
        summary.read = len(pending)
        say_unsupported(ctx, summary, "erp", "erasure",
                        f"{len(pending)} pending erasure request(s) stay pending in the store: erase by hand",
                        payload={"requests": [safe(as_request(r)) for r in pending[:100]]})
        return summary
    try:
        for raw in map(as_request, ctx.storefront.list_erasure_requests(status="pending")):
            erase_request(ctx, raw, summary)
    except TransientError:
        summary.failed += 1
        raise
    return summary


def erase_request(ctx: FlowContext, raw: dict[str, Any], summary: RunSummary) -> None:
    """One pending request (as the store's mapping gives it), the path of the runs and of a replay:
    erased and closed, or dead-lettered (``safe(raw)``: no personal data) with why."""
    rid = str(raw.get("id") or "?")
    try:
        erase_one(ctx, raw)
    except PermanentError as exc:
        dead_letter(ctx, summary, ENTITY, rid, safe(raw), f"rejected: {exc.system} {exc.status} {exc}")
        return
    except NeedsReview as exc:
        dead_letter(ctx, summary, ENTITY, rid, safe(raw), f"erasure_needs_review: {exc}", error_kind="policy")
        return
    summary.done += 1
    ctx.store.resolve_dead_letters(ctx.flow, ENTITY, rid)


class NeedsReview(Exception):
    pass


def bound_customers(ctx: FlowContext, raw: dict[str, Any]) -> tuple[list[tuple[str, str]], list[str]]:
    """The ERP customers a request erases, from reads only: ``(xref id, ERP number)`` pairs and the
    numbers; NeedsReview when none is bound but some match by e-mail (what a dry run shows too)."""
    cid = raw.get("customer_id")
    email = str(raw.get("email") or "")
    bound: list[tuple[str, str]] = []  # (xref external id, ERP customer number)
    for ext in [cid, guest_external_id(email) if email else None]:
        if ext:
            x = ctx.store.get_xref("erp", "customer", ext)
            if x is not None:
                bound.append((ext, x.internal_id))
    numbers = list(dict.fromkeys(no for _, no in bound))
    if not numbers and email:
        matches = [str(c.get("customer_no")) for c in ctx.erp.find_customers(email=normalise_email(email))]
        if matches:
            raise NeedsReview(f"ERP customer(s) {', '.join(matches)} match by e-mail but are not bound to "
                              f"{cid or 'this guest'}; decide by hand (B2B accounts are the ERP's)")
    return bound, numbers


def erase_one(ctx: FlowContext, raw: dict[str, Any]) -> list[str]:
    rid = str(raw["id"])
    cid = raw.get("customer_id")
    email = str(raw.get("email") or "")
    bound, numbers = bound_customers(ctx, raw)
    for no in numbers:
        key = f"erasure:{rid}:{no}"

        def anonymize(no: str = no, key: str = key) -> dict[str, Any]:
            return _strip(ctx.erp.anonymize_customer(no, idempotency_key=key))

        def ref_of(rec: dict[str, Any], no: str = no) -> str:
            return str(rec.get("customer_no") or no)

        idempotent_write(
            ctx, key=key, entity="customer", external_id=no, operation="anonymize_customer",
            payload={"request": rid, "customer_no": no}, write=anonymize, ref_of=ref_of,
        )
    forget(ctx, [ext for ext, _ in bound if ext != cid], cid, email)
    note = f"ERP anonymised: {', '.join(numbers) or 'nothing bound'}"
    idempotent_write(
        ctx, key=f"erasure:{rid}:complete", entity=ENTITY, external_id=rid, operation="complete_erasure",
        payload={"request": rid, "note": note},
        write=lambda: _strip(ctx.storefront.complete_erasure_request(rid, {"note": note},
                                                                    idempotency_key=f"erasure:{rid}:complete")),
        ref_of=lambda rec: rid, system="storefront",
    )
    audit(ctx, "state", "erasure", ENTITY, rid,
          {"request": rid, "customer_id": cid, "subject": subject_ref(email) if email else None},
          {"erp_customers": numbers}, 0, "ok")
    return numbers


def _strip(rec: dict[str, Any]) -> dict[str, Any]:
    """Keep only ids of an answer: the ledger stores answers, and this one is about a person."""
    return {k: rec.get(k) for k in ("id", "customer_no", "status", "anonymised_at") if k in rec}


def forget(ctx: FlowContext, guest_refs: list[str], cid: str | None, email: str) -> None:
    """Drop what erpsync keeps about the person: the guest xref (its key is the e-mail), the stored
    answers of their customer writes, and the payloads of their open dead letters."""
    store = ctx.store
    with store.transaction():  # all of it or nothing
        for ext in guest_refs:
            store.xrefs.delete("erp", "customer", ext)
        keys = [f"customer:{ref}" for ref in [cid, *guest_refs] if ref]
        if keys:
            store.ledger.drop_responses(keys)
        if email:
            store.dead_letters.redact_payloads(normalise_email(email), store.redactor.redact)
