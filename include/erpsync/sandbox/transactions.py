"""Transactional endpoints of the sandbox: shipments in packages, returns, credit memos, refunds, erasure.

ERP (``install_erp_transactions``):

* ``POST /_admin/ship_packages {"order_no"|"external_ref", "packages": [{"carrier", "tracking_no"?,
  "status"?: "shipped"|"pending", "lines": [{"item_code", "qty"}]}]}``: one shipment with several
  packages and carriers; the order becomes ``partially_shipped`` until every ordered unit is in a
  package (422 ``over_shipment`` beyond that). ``POST /_admin/ship_package {"shipment_no",
  "tracking_no"}`` hands a pending package to its carrier (status ``shipped``).
* ``POST /api/returns {"external_ref", "order_no", "currency", "lines": [{"item_code", "qty",
  "reason"}]}`` opens an RMA ``RMA-000001`` (422 ``over_return`` beyond what was ordered and not yet
  returned); ``GET /api/returns?external_ref=&updated_since=`` and ``GET /api/returns/{rma_no}``.
* ``POST /_admin/returns/receive {"rma_no", "lines"?: [{"item_code", "qty", "disposition":
  "restock"|"scrap"|"repair"}], "reject"?: true}``: the warehouse receives the goods; restocked units go
  back to ``on_hand`` of the first warehouse; the RMA gets a credit memo ``CM-000001`` computed the
  ERP way: per line, net = price x qty less the prorated line discount, tax = the line's tax
  prorated by quantity, each rounded half-up (``erpsync.rules.refunds`` method ``prorate``).
* ``POST /api/customers/{customer_no}/anonymize``: personal fields are replaced, the customer number,
  group and terms stay (invoices must be kept); its sales orders lose their ship-to address.

Storefront (``install_storefront_transactions``):

* ``POST /admin/api/orders/{id}/returns {"line_items": [{"sku", "quantity", "reason"}]}``: a shopper
  opens a return ``R100001`` (event ``return.requested``); ``GET /admin/api/returns?updated_since=``,
  ``GET /admin/api/returns/{id}``, ``PUT /admin/api/returns/{id} {"status", "erp_reference",
  "dispositions": {sku: disposition}, "credit_memo"}``.
* ``POST /admin/api/returns/{id}/refunds {"line_items": [{"sku", "quantity"}], "amount"?, "currency",
  "note"?}``: refunds the return; without ``amount`` the store computes it its own way: tax
  recomputed on the rounded net (method ``recompute_tax``), so it can differ from the ERP's credit
  memo by a cent per line. The order gets ``refunds`` and ``financial_status``
  ``partially_refunded`` / ``refunded``.
* Erasure (GDPR/CCPA): ``POST /_admin/erasure_requests {"customer_id"} | {"email"}`` files a request;
  ``GET /admin/api/privacy/erasure_requests?status=pending``; ``POST
  /admin/api/privacy/erasure_requests/{id}/complete`` closes it and redacts the store's customer.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from erpsync.sandbox.data import LazyTable, Raw, index_of, iso, now
from erpsync.sandbox.paging import count_page, cursor_page, erp_page
from erpsync.sandbox.server import HttpError, Request, Service

CENT = Decimal("0.01")
DISPOSITIONS = ("restock", "scrap", "repair")


def q2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _state(svc: Service) -> dict[str, Any]:
    """Per-seed state: lives on the Dataset, so a reseed forgets it."""
    st = svc.data.__dict__.setdefault("_transactions_state", {})
    if not st:
        st["returns"] = LazyTable(0, lambda i: {}, lambda i: 0.0)
        st["by_ref"] = {}
        st["erasures"] = []
    return st


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise HttpError(422, "validation_failed", f"{field} must be a positive whole number, got {value!r}",
                        field=field)
    return value


# =========================================================================== ERP


def install_erp_transactions(svc: Any) -> None:
    r = svc.route
    r("POST", "/api/customers/{customer_no}/anonymize", lambda req: erp_anonymize(svc, req))
    r("GET", "/api/returns", lambda req: erp_list_returns(svc, req))
    r("POST", "/api/returns", lambda req: erp_create_return(svc, req))
    r("GET", "/api/returns/{rma_no}", lambda req: erp_get_return(svc, req))
    svc.admin("POST", "/_admin/ship_packages", lambda req: erp_ship_packages(svc, req))
    svc.admin("POST", "/_admin/ship_package", lambda req: erp_ship_package(svc, req))
    svc.admin("POST", "/_admin/returns/receive", lambda req: erp_receive_return(svc, req))


def _order_idx(svc: Any, body: Raw) -> int:
    if body.get("order_no"):
        return svc._order_index(body["order_no"])
    refs = svc.orders_by_ref.get(body.get("external_ref") or "")
    if refs:
        return refs[-1]
    raise HttpError(404, "not_found", "send the order_no or external_ref of an existing sales order")


def _ordered(order: Raw) -> dict[str, int]:
    out: dict[str, int] = {}
    for ln in order.get("lines") or []:
        out[ln["item_code"]] = out.get(ln["item_code"], 0) + int(Decimal(str(ln["qty"])))
    return out


def _shipped(svc: Any, order_no: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in range(len(svc.shipments)):
        s = svc.shipments.get(i) or {}
        if s.get("order_no") != order_no:
            continue
        for p in s.get("packages") or []:
            for ln in p.get("lines") or []:
                out[ln["item_code"]] = out.get(ln["item_code"], 0) + int(Decimal(str(ln["qty"])))
    return out


def erp_ship_packages(svc: Any, req: Request) -> tuple[int, Any]:
    body = req.json_object()
    packages = body.get("packages")
    if not isinstance(packages, list) or not packages:
        raise HttpError(422, "validation_failed", 'send "packages": [{"carrier", "lines": [{"item_code", "qty"}]}]')
    with svc.lock:
        idx = _order_idx(svc, body)
        order = dict(svc.orders.get(idx) or {})
        if order.get("status") not in ("open", "partially_shipped"):
            raise HttpError(409, "not_shippable", f"order {order.get('order_no')} is {order.get('status')}")
        ordered, shipped = _ordered(order), _shipped(svc, order["order_no"])
        at = now()
        n0 = len(svc.shipments) + 1
        out = []
        for k, p in enumerate(packages, start=1):
            if not isinstance(p, dict) or not p.get("carrier") or not isinstance(p.get("lines"), list) or not p["lines"]:
                raise HttpError(422, "validation_failed", f"package {k}: needs a carrier and lines")
            status = p.get("status", "shipped")
            if status not in ("shipped", "pending"):
                raise HttpError(422, "validation_failed", f"package {k}: status must be shipped or pending")
            lines = []
            for ln in p["lines"]:
                code, qty = ln.get("item_code"), _int(ln.get("qty"), f"package {k} qty")
                if code not in ordered:
                    raise HttpError(422, "unknown_item", f"package {k}: {code!r} is not on order {order['order_no']}")
                shipped[code] = shipped.get(code, 0) + qty
                if shipped[code] > ordered[code]:
                    raise HttpError(422, "over_shipment",
                                    f"{code}: ordered {ordered[code]}, shipping {shipped[code]}")
                lines.append({"item_code": code, "qty": qty})
            tracking = p.get("tracking_no") or f"{str(p['carrier'])[:3].upper()}{svc.options.seed % 1000:03d}{n0:06d}{k:02d}"
            out.append({"carrier": str(p["carrier"]), "tracking_no": tracking, "status": status, "lines": lines,
                        "shipped_at": iso(at) if status == "shipped" else None})

        def make(sidx: int) -> Raw:
            return {"shipment_no": f"SHP-{sidx + 1:06d}", "order_no": order["order_no"],
                    "external_ref": order.get("external_ref"), "status": "shipped", "packages": out,
                    "shipped_at": iso(at), "modified_at": iso(at)}

        _, shipment = svc.shipments.add(make, at)
        for p in out:
            for ln in p["lines"]:
                svc._move_stock(ln["item_code"], allocated=-ln["qty"], on_hand=-ln["qty"], at=at,
                                warehouse=order.get("warehouse"))
        complete = all(shipped.get(c, 0) >= q for c, q in ordered.items())
        order.update(status="shipped" if complete else "partially_shipped", modified_at=iso(at))
        svc.orders.put(idx, order, at)
        return 201, shipment


def erp_ship_package(svc: Any, req: Request) -> tuple[int, Any]:
    body = req.json_object()
    with svc.lock:
        sidx = index_of(str(body.get("shipment_no") or ""), "SHP-")
        shipment = svc.shipments.get(sidx) if sidx is not None and sidx >= 0 else None
        if shipment is None:
            raise HttpError(404, "not_found", f"no shipment {body.get('shipment_no')!r}")
        at = now()
        shipment = {**shipment, "packages": [dict(p) for p in shipment["packages"]], "modified_at": iso(at)}
        hit = [p for p in shipment["packages"] if p["tracking_no"] == body.get("tracking_no")]
        if not hit:
            raise HttpError(404, "not_found", f"no package {body.get('tracking_no')!r} in {shipment['shipment_no']}")
        hit[0].update(status="shipped", shipped_at=iso(at))
        svc.shipments.put(sidx, shipment, at)
        return 200, shipment


def _return_idx(svc: Any, rma_no: str) -> int:
    idx = index_of(rma_no, "RMA-")
    rec = _state(svc)["returns"].get(idx) if idx is not None and idx >= 0 else None
    if idx is None or rec is None:
        raise HttpError(404, "not_found", f"no return {rma_no}")
    return idx


def erp_list_returns(svc: Any, req: Request) -> tuple[int, Any]:
    st = _state(svc)
    ref = req.arg("external_ref")
    indices = None
    if ref is not None:
        indices = [st["by_ref"][ref]] if ref in st["by_ref"] else []
    return erp_page(req, st["returns"], lambda i, r: r, indices=indices)


def erp_get_return(svc: Any, req: Request) -> tuple[int, Any]:
    return 200, _state(svc)["returns"].get(_return_idx(svc, req.params["rma_no"]))


def _returned(svc: Any, order_no: str) -> dict[str, int]:
    out: dict[str, int] = {}
    table = _state(svc)["returns"]
    for i in range(len(table)):
        rec = table.get(i) or {}
        if rec.get("order_no") != order_no or rec.get("status") == "rejected":
            continue
        for ln in rec["lines"]:
            out[ln["item_code"]] = out.get(ln["item_code"], 0) + ln["qty"]
    return out


def erp_create_return(svc: Any, req: Request) -> tuple[int, Any]:
    body = req.json_object()
    st = _state(svc)
    idx = _order_idx(svc, {"order_no": body.get("order_no")}) if body.get("order_no") else None
    if idx is None:
        raise HttpError(422, "validation_failed", "order_no is required", field="order_no")
    order = svc.orders.get(idx) or {}
    if body.get("currency") and body["currency"] != order.get("currency"):
        raise HttpError(422, "validation_failed", f"currency {body['currency']} is not the order's "
                        f"{order.get('currency')}", field="currency")
    lines = body.get("lines")
    if not isinstance(lines, list) or not lines:
        raise HttpError(422, "validation_failed", "a return needs at least one line", field="lines")
    ordered, returned = _ordered(order), _returned(svc, order["order_no"])
    out = []
    for n, ln in enumerate(lines, start=1):
        code = ln.get("item_code") if isinstance(ln, dict) else None
        if code not in ordered:
            raise HttpError(422, "unknown_item", f"line {n}: {code!r} is not on order {order['order_no']}",
                            field=f"lines[{n}].item_code")
        qty = _int(ln.get("qty"), f"lines[{n}].qty")
        returned[code] = returned.get(code, 0) + qty
        if returned[code] > ordered[code]:
            raise HttpError(422, "over_return", f"{code}: ordered {ordered[code]}, returning {returned[code]}")
        out.append({"line_no": n, "item_code": code, "qty": qty, "reason": str(ln.get("reason") or ""),
                    "disposition": None, "received_qty": 0})
    at = now()

    def make(i: int) -> Raw:
        return {"rma_no": f"RMA-{i + 1:06d}", "external_ref": body.get("external_ref"),
                "order_no": order["order_no"], "customer_no": order.get("customer_no"),
                "currency": order.get("currency"), "status": "open", "lines": out, "credit_memo": None,
                "created_at": iso(at), "modified_at": iso(at)}

    i, rec = st["returns"].add(make, at)
    if rec["external_ref"]:
        st["by_ref"][rec["external_ref"]] = i
    svc.counters["returns"] += 1
    return 201, rec


def _credit_line(order: Raw, code: str, qty: int) -> Raw:
    """ERP convention: prorate the line's discount and tax by quantity, round each half-up."""
    line = next(ln for ln in order["lines"] if ln["item_code"] == code)
    ordered = Decimal(str(line["qty"]))
    share = Decimal(qty) / ordered
    net = q2(Decimal(str(line["unit_price"])) * qty - Decimal(str(line.get("discount") or "0")) * share)
    tax_total = sum((Decimal(str(t["amount"])) for t in line.get("taxes") or []), Decimal("0"))
    tax = q2(tax_total * share)
    return {"item_code": code, "qty": qty, "net": str(net), "tax": str(tax), "amount": str(net + tax)}


def erp_receive_return(svc: Any, req: Request) -> tuple[int, Any]:
    body = req.json_object()
    st = _state(svc)
    with svc.lock:
        idx = _return_idx(svc, str(body.get("rma_no") or ""))
        rec = dict(st["returns"].get(idx) or {})
        if rec["status"] != "open":
            raise HttpError(409, "not_receivable", f"return {rec['rma_no']} is {rec['status']}")
        at = now()
        if body.get("reject"):
            rec.update(status="rejected", modified_at=iso(at))
            st["returns"].put(idx, rec, at)
            return 200, rec
        wanted = body.get("lines") or [{"item_code": ln["item_code"], "qty": ln["qty"], "disposition": "restock"}
                                       for ln in rec["lines"]]
        lines = [dict(ln) for ln in rec["lines"]]
        order = svc.orders.get(svc._order_index(rec["order_no"])) or {}
        memo_lines = []
        for w in wanted:
            disp = w.get("disposition", "restock")
            if disp not in DISPOSITIONS:
                raise HttpError(422, "validation_failed", f"disposition must be one of {DISPOSITIONS}")
            match = [ln for ln in lines if ln["item_code"] == w.get("item_code")]
            qty = _int(w.get("qty"), "qty")
            if not match or qty > match[0]["qty"] - match[0]["received_qty"]:
                raise HttpError(422, "over_receipt", f"{w.get('item_code')}: not that many on {rec['rma_no']}")
            match[0].update(received_qty=match[0]["received_qty"] + qty, disposition=disp)
            memo_lines.append(_credit_line(order, match[0]["item_code"], qty))
            if disp == "restock":
                svc._move_stock(match[0]["item_code"], on_hand=qty, at=at, warehouse=order.get("warehouse"))
        svc.counters["credit_memos"] += 1
        amount = sum((Decimal(m["amount"]) for m in memo_lines), Decimal("0"))
        rec.update(lines=lines, status="credited", modified_at=iso(at),
                   credit_memo={"memo_no": f"CM-{svc.counters['credit_memos']:06d}", "amount": str(amount),
                                "currency": rec["currency"], "lines": memo_lines, "issued_at": iso(at)})
        st["returns"].put(idx, rec, at)
        return 200, rec


def erp_anonymize(svc: Any, req: Request) -> tuple[int, Any]:
    idx = svc._customer_index(req.params["customer_no"])
    old = svc.customers.get(idx) or {}
    at = now()
    rec = {**old, "name": f"Anonymised {old['customer_no']}", "email": None, "phone": None, "tax_id": None,
           "addresses": [], "anonymised_at": old.get("anonymised_at") or iso(at), "modified_at": iso(at)}
    svc.customers.put(idx, rec, at)
    svc._reindex(idx, rec)
    for i in range(len(svc.orders)):
        o = svc.orders.get(i) or {}
        if o.get("customer_no") == rec["customer_no"] and (o.get("shipping") or {}).get("address"):
            svc.orders.put(i, {**o, "shipping": {**o["shipping"], "address": None}}, svc.orders.time_of(i))
    if not old.get("anonymised_at"):
        svc.counters["customers_anonymised"] += 1
    return 200, rec


# =========================================================================== storefront


def install_storefront_transactions(svc: Any) -> None:
    r = svc.route
    r("POST", "/admin/api/orders/{id}/returns", lambda req: sf_open_return(svc, req))
    r("GET", "/admin/api/returns", lambda req: cursor_page(req, _state(svc)["returns"], lambda i, x: x))
    r("GET", "/admin/api/returns/count", lambda req: count_page(req, _state(svc)["returns"]))
    r("GET", "/admin/api/returns/{id}", lambda req: (200, _state(svc)["returns"].get(_sf_return_idx(svc, req))))
    r("PUT", "/admin/api/returns/{id}", lambda req: sf_update_return(svc, req))
    r("POST", "/admin/api/returns/{id}/refunds", lambda req: sf_refund_return(svc, req))
    r("GET", "/admin/api/privacy/erasure_requests", lambda req: sf_list_erasures(svc, req))
    r("POST", "/admin/api/privacy/erasure_requests/{id}/complete", lambda req: sf_complete_erasure(svc, req))
    svc.admin("POST", "/_admin/erasure_requests", lambda req: sf_file_erasure(svc, req))


def _sf_return_idx(svc: Any, req: Request) -> int:
    idx = index_of(req.params["id"], "R", offset=100001)
    if idx is None or idx < 0 or _state(svc)["returns"].get(idx) is None:
        raise HttpError(404, "not_found", f"no return {req.params['id']}")
    return idx


def _sf_ordered(order: Raw) -> dict[str, Raw]:
    return {ln["sku"]: ln for ln in order["line_items"]}


def sf_open_return(svc: Any, req: Request) -> tuple[int, Any]:
    oidx = svc._order_idx(req.params["id"])
    order = svc.orders.get(oidx) or {}
    body = req.json_object()
    st = _state(svc)
    lines = body.get("line_items")
    if not isinstance(lines, list) or not lines:
        raise HttpError(422, "validation_failed", 'send {"line_items": [{"sku", "quantity", "reason"}]}')
    ordered = _sf_ordered(order)
    taken: dict[str, int] = {}
    table = st["returns"]
    for i in range(len(table)):
        rec = table.get(i) or {}
        if rec.get("order_id") == order["id"] and rec.get("status") != "rejected":
            for ln in rec["line_items"]:
                taken[ln["sku"]] = taken.get(ln["sku"], 0) + ln["quantity"]
    out = []
    for n, ln in enumerate(lines, start=1):
        s = ln.get("sku") if isinstance(ln, dict) else None
        if s not in ordered:
            raise HttpError(422, "unknown_line", f"order {order['id']} has no line with sku {s!r}")
        qty = _int(ln.get("quantity"), f"line_items[{n}].quantity")
        taken[s] = taken.get(s, 0) + qty
        if taken[s] > int(ordered[s]["quantity"]):
            raise HttpError(422, "over_return", f"sku {s}: ordered {ordered[s]['quantity']}, returning {taken[s]}")
        out.append({"line_item_id": ordered[s]["id"], "sku": s, "quantity": qty, "reason": str(ln.get("reason") or ""),
                    "disposition": None})
    at = now()

    def make(i: int) -> Raw:
        return {"id": f"R{i + 100001}", "order_id": order["id"], "currency": order["currency"], "status": "requested",
                "line_items": out, "erp_reference": None, "credit_memo": None, "refunds": [],
                "created_at": iso(at), "updated_at": iso(at)}

    _, rec = table.add(make, at)
    svc._event("return.requested", rec["id"], at)
    return 201, rec


def sf_update_return(svc: Any, req: Request) -> tuple[int, Any]:
    idx = _sf_return_idx(svc, req)
    body = req.json_object()
    allowed = {"status", "erp_reference", "dispositions", "credit_memo", "note"}
    if set(body) - allowed:
        raise HttpError(422, "unknown_fields", f"return fields allowed: {sorted(allowed)}")
    if "status" in body and body["status"] not in ("requested", "open", "received", "credited", "refunded",
                                                   "rejected", "closed"):
        raise HttpError(422, "validation_failed", f"unknown return status {body['status']!r}", field="status")
    table = _state(svc)["returns"]
    rec = dict(table.get(idx) or {})
    disp = body.get("dispositions") or {}
    rec["line_items"] = [{**ln, "disposition": disp.get(ln["sku"], ln["disposition"])} for ln in rec["line_items"]]
    if rec.get("status") == "refunded" and body.get("status") in ("received", "credited", "open"):
        body = {k: v for k, v in body.items() if k != "status"}  # a refunded return stays refunded
    at = now()
    rec.update({k: v for k, v in body.items() if k != "dispositions"}, updated_at=iso(at))
    table.put(idx, rec, at)
    svc._event("return.updated", rec["id"], at)
    return 200, rec


def _store_refund_line(line: Raw, qty: int) -> tuple[Decimal, Decimal]:
    """Store convention: net rounded half-up, tax recomputed on the rounded net."""
    ordered = Decimal(int(line["quantity"]))
    net = q2(Decimal(line["price"]) * qty - Decimal(line.get("total_discount") or "0") * Decimal(qty) / ordered)
    rate = sum((Decimal(t.get("rate") or "0") for t in line.get("tax_lines") or []), Decimal("0"))
    return net, q2(net * rate)


def sf_refund_return(svc: Any, req: Request) -> tuple[int, Any]:
    idx = _sf_return_idx(svc, req)
    body = req.json_object()
    table = _state(svc)["returns"]
    rec = dict(table.get(idx) or {})
    oidx = svc._order_idx(rec["order_id"])
    order = dict(svc.orders.get(oidx) or {})
    if body.get("currency") and body["currency"] != order["currency"]:
        raise HttpError(422, "currency_mismatch", f"refund in {body['currency']}, order in {order['currency']}")
    ordered = _sf_ordered(order)
    wanted = body.get("line_items") or [{"sku": ln["sku"], "quantity": ln["quantity"]} for ln in rec["line_items"]]
    on_return = {ln["sku"]: ln["quantity"] for ln in rec["line_items"]}
    lines, computed = [], Decimal("0")
    for ln in wanted:
        s, qty = ln.get("sku"), _int(ln.get("quantity"), "quantity")
        if s not in on_return or qty > on_return[s]:
            raise HttpError(422, "over_refund", f"sku {s}: {qty} is more than the return holds")
        net, tax = _store_refund_line(ordered[s], qty)
        computed += net + tax
        lines.append({"sku": s, "quantity": qty, "subtotal": str(net), "tax": str(tax)})
    amount = Decimal(str(body["amount"])) if body.get("amount") is not None else computed
    already = sum((Decimal(x["amount"]) for x in order.get("refunds") or []), Decimal("0"))
    if amount <= 0 or already + amount > Decimal(order["total_price"]):
        raise HttpError(422, "over_refund", f"refunding {amount} after {already} exceeds {order['total_price']}")
    at = now()
    refund = {"id": f"RF{rec['id'][1:]}-{len(rec['refunds']) + 1}", "return_id": rec["id"], "order_id": order["id"],
              "amount": str(amount), "currency": order["currency"], "line_items": lines,
              "note": str(body.get("note") or ""), "created_at": iso(at)}
    rec.update(refunds=[*rec["refunds"], refund], status="refunded", updated_at=iso(at))
    table.put(idx, rec, at)
    total_refunded = already + amount
    order.update(refunds=[*(order.get("refunds") or []), refund], updated_at=iso(at),
                 financial_status="refunded" if total_refunded >= Decimal(order["total_price"]) else "partially_refunded")
    svc.orders.put(oidx, order, at)
    svc._event("return.updated", rec["id"], at)
    return 201, {"refund": refund}


def sf_file_erasure(svc: Any, req: Request) -> tuple[int, Any]:
    body = req.json_object()
    with svc.lock:
        email, cid = body.get("email"), body.get("customer_id")
        if cid:
            email = (svc.customers.get(svc._customer_idx(cid)) or {}).get("email")
        if not email:
            raise HttpError(422, "validation_failed", "send customer_id or email")
        st = _state(svc)
        at = now()
        rec = {"id": f"ER{len(st['erasures']) + 1:06d}", "customer_id": cid, "email": email, "status": "pending",
               "requested_at": iso(at), "completed_at": None}
        st["erasures"].append(rec)
        svc._event("customer.redact_requested", rec["id"], at)
        return 201, rec


def sf_list_erasures(svc: Any, req: Request) -> tuple[int, Any]:
    status = req.arg("status")
    items = [r for r in _state(svc)["erasures"] if not status or r["status"] == status]
    return 200, {"items": items, "next_cursor": None}


def sf_complete_erasure(svc: Any, req: Request) -> tuple[int, Any]:
    st = _state(svc)
    hit = [r for r in st["erasures"] if r["id"] == req.params["id"]]
    if not hit:
        raise HttpError(404, "not_found", f"no erasure request {req.params['id']}")
    rec = hit[0]
    at = now()
    if rec["status"] != "completed":
        if rec.get("customer_id"):
            cidx = svc._customer_idx(rec["customer_id"])
            old = svc.customers.get(cidx) or {}
            # redacted in place; updated_at stays, so no sync copies the redaction back as a change
            svc.customers.put(cidx, {**old, "email": f"redacted-{old['id']}@redacted.invalid", "first_name": "",
                                     "last_name": "", "phone": "", "addresses": []}, svc.customers.time_of(cidx))
            svc._email_index = None
        rec.update(status="completed", completed_at=iso(at), email=None,
                   note=str((req.body or {}).get("note") or "") if isinstance(req.body, dict) else "")
    return 200, rec
