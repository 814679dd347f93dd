"""ERP items -> canonical products and variants (the catalog master is the ERP).

An ERP item is one sellable SKU. Items that name a template in ``variant_of`` (ERPNext style) are
variants of that template's product, with their ``attributes`` as option values; an item without
it is a product with one variant. Kit components arrive as ERP item codes and are translated to
SKUs through the cross reference (a look-up the flow passes in).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from erpsync.errors import MappingError
from erpsync.mappings.engine import F, RuleViolation, apply_spec, boolean, build, quantity, text, timestamp
from erpsync.mappings.refs import CatalogItem
from erpsync.mappings.transforms import WEIGHT_GRAMS, chain, check, lookup, unit, uom, upper
from erpsync.model import Product, Variant

Raw = Mapping[str, Any]
SkuOf = Callable[[str], str | None]


def catalog_item(raw: Raw) -> CatalogItem:
    """What the flows read of a sandbox item (``item_code``, ``sku``, ``variant_of``, ``modified_at``)."""
    sku = raw.get("sku")
    return CatalogItem(
        code=str(raw["item_code"]) if raw.get("item_code") else None,
        sku=str(sku).strip().upper() if sku not in (None, "") else None,
        template=str(raw["variant_of"]) if raw.get("variant_of") else None,
        updated_at=raw.get("modified_at") if isinstance(raw.get("modified_at"), str) else None,
        list_price=raw.get("list_price"), cost=raw.get("cost"), currency=raw.get("currency"),
        active=raw.get("active", True) is not False,
    )


def _weight(raw: Raw) -> Any:
    if raw.get("weight") in (None, ""):
        return None
    return (raw["weight"], raw.get("weight_uom") or "kg")


def _attributes(value: Any) -> dict[str, str]:
    """``[{"attribute": "Colour", "value": "Red"}]`` (ERPNext) or a plain dict -> ``{"Colour": "Red"}``."""
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = []
        for a in value:
            if not isinstance(a, Mapping) or not a.get("attribute"):
                raise RuleViolation("attributes")
            pairs.append((a["attribute"], a.get("value")))
    else:
        raise RuleViolation("attributes")
    return {text(k): text(v) for k, v in pairs if v not in (None, "")}


VARIANT: list[F] = [
    F("sku", "sku", chain(text, upper, check(lambda s: " " not in s, "sku_no_spaces")), required=True),
    F("name", "description", text, required=True),
    F("attributes", "attributes", _attributes),
    F("barcode", "barcode", text),
    F("weight_grams", _weight, unit(WEIGHT_GRAMS)),
    F("uom", "uom", uom, default="EA"),
    F("active", "active", boolean, default=True),
]


def product_spec(sku_of: SkuOf) -> list[F]:
    """The product fields of an item; ``sku_of`` resolves kit components' item codes."""
    to_sku = lookup(sku_of, "item_xref")

    def kit(value: Any) -> dict[str, int]:
        if not isinstance(value, list):
            raise RuleViolation("list")
        out: dict[str, int] = {}
        for c in value:
            if not isinstance(c, Mapping):
                raise RuleViolation("kit_component")
            out[to_sku(c.get("item_code"))] = quantity(c.get("qty"))
        return out

    return [
        F("code", lambda raw: raw.get("variant_of") or raw.get("item_code"), text, required=True),
        F("name", lambda raw: raw.get("template_description") or raw.get("description"), text, required=True),
        F("category", "item_group", text),
        F("brand", "brand", text),
        F("kit_components", "kit_components", kit, default=dict),
        F("is_kit", lambda raw: bool(raw.get("kit_components")), boolean),
        F("active", "active", boolean, default=True),
        F("updated_at", "modified_at", timestamp),
    ]


def variant_from_erp(raw: Raw) -> Variant:
    record = f"erp item {raw.get('item_code', '?')}"
    return build(Variant, apply_spec(VARIANT, raw, record), record)


def product_from_erp(raws: list[Raw], sku_of: SkuOf) -> Product:
    """One product from its items (one item, or a template's variants, in any order).

    The product is active when any variant is; ``updated_at`` is the newest of them.
    """
    if not raws:
        raise ValueError("product_from_erp needs at least one item")
    first = raws[0]
    record = f"erp item {first.get('variant_of') or first.get('item_code', '?')}"
    kw = apply_spec(product_spec(sku_of), first, record)
    variants = [variant_from_erp(r) for r in sorted(raws, key=lambda r: str(r.get("item_code")))]
    skus = [v.sku for v in variants]
    if len(set(skus)) != len(skus):
        raise MappingError(record, "variants.sku", "unique", skus)
    kw["variants"] = variants
    kw["active"] = any(v.active for v in variants)
    times = [t for t in (apply_spec([F("t", "modified_at", timestamp)], r, record).get("t") for r in raws) if t]
    kw["updated_at"] = max(times) if times else None
    return build(Product, kw, record)
