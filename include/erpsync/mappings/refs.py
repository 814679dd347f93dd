"""What the catalog and pricing flows read out of an ERP's raw records, whatever the ERP.

An ERP mapping module (``erp_sandbox``, ``erp_tryton``) turns one raw item into a
:class:`CatalogItem` (``catalog_item(raw)``) and one raw price row into a :class:`PriceRef`
(``price_ref(raw)``): codes, the SKU, the template an item is a variant of, the change time the
cursor follows, the list price and cost a new product starts with. The flows never read an
ERP's field names themselves, so the same catalog_sync and pricing_sync run on any ERP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """One ERP item (a sellable SKU) as the flows see it; fields the ERP lacks are None."""

    code: str | None  # the ERP's item code (what price rows, kits and sales refer to)
    sku: str | None  # the storefront SKU
    template: str | None  # the product this item is a variant of; None: a product of its own
    updated_at: str | None  # ISO 8601 change time (the cursor)
    list_price: Any = None  # the first price of a new product (money string)
    cost: Any = None  # the price guard's floor (money string)
    currency: str | None = None  # of list price and cost; None: the price's own currency
    active: bool = True


@dataclass(frozen=True, slots=True)
class PriceRef:
    """One ERP price row as the flows see it before mapping."""

    item_code: str | None  # the item the price is for (resolved to a SKU through the items read)
    row_id: str  # the id of its dead letter
    updated_at: str | None  # ISO 8601 change time (the cursor)
