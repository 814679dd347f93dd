"""Risky catalog changes are held for a person (issue 20 item 4): the rules of
``erpsync.rules.catalog_holds`` (pure functions) and their settings (``erpsync.config``)."""

from __future__ import annotations

import dataclasses

import pytest

from erpsync import config
from erpsync.errors import ConfigError
from erpsync.rules.catalog_holds import (
    CatalogChange,
    HoldRules,
    best_sellers,
    decide,
)


def retire(code: str, *skus: str) -> CatalogChange:
    return CatalogChange(code=code, skus=skus or (f"{code}-1",), retire=True, title_before="T", title_after="T")


def rename(code: str, before: str, after: str, *, uom_before: dict[str, str] | None = None,
           uom_after: dict[str, str] | None = None) -> CatalogChange:
    return CatalogChange(code=code, skus=(f"{code}-1",), retire=False, title_before=before, title_after=after,
                         uom_before=uom_before or {}, uom_after=uom_after or {})


def test_one_run_retiring_more_than_the_share_of_published_products_holds_every_retirement() -> None:
    rules = HoldRules(retire_share_pct=10)
    changes = [retire(f"P{i}") for i in range(11)]
    holds = decide(changes, published=100, open_orders={}, sales={}, rules=rules)
    assert [h.code for h in holds] == [f"P{i}" for i in range(11)]
    assert {h.kind for h in holds} == {"catalog_retire"}
    assert "11 of 100 published products (11.0%)" in holds[0].reason and "more than 10%" in holds[0].reason


def test_a_few_retirements_of_a_small_store_are_no_bulk_retirement() -> None:
    changes = [retire("P1"), retire("P2")]
    assert decide(changes, published=3, open_orders={}, sales={}, rules=HoldRules()) == []  # 67 %, but 2 < 5
    holds = decide(changes, published=3, open_orders={}, sales={}, rules=HoldRules(retire_min=2))
    assert [h.code for h in holds] == ["P1", "P2"]


def test_retiring_up_to_the_share_goes_on() -> None:
    changes = [retire(f"P{i}") for i in range(10)]
    assert decide(changes, published=100, open_orders={}, sales={}, rules=HoldRules(retire_share_pct=10)) == []


def test_the_share_counts_retirements_only_and_an_empty_store_holds_nothing_by_share() -> None:
    changes = [retire("P1")] + [rename(f"R{i}", "a", "b") for i in range(50)]
    assert decide(changes, published=100, open_orders={}, sales={}, rules=HoldRules()) == []
    assert decide([retire("P1")], published=0, open_orders={}, sales={}, rules=HoldRules()) == []


def test_a_product_with_open_orders_is_not_retired() -> None:
    holds = decide([retire("P1", "S1", "S2"), retire("P2", "S3")], published=1000,
                   open_orders={"S2": 3}, sales={}, rules=HoldRules())
    assert len(holds) == 1
    (hold,) = holds
    assert hold.code == "P1" and hold.kind == "catalog_retire"
    assert "open orders" in hold.reason and "S2 (3 units)" in hold.reason


def test_open_orders_rule_can_be_switched_off() -> None:
    assert decide([retire("P1", "S1")], published=1000, open_orders={"S1": 1}, sales={},
                  rules=HoldRules(open_orders=False)) == []


def test_best_sellers_are_the_top_skus_by_units_sold() -> None:
    sales = {"A": 50, "B": 40, "C": 40, "D": 1, "E": 0}
    assert best_sellers(sales, top=3) == {"A", "B", "C"}
    assert best_sellers(sales, top=10) == {"A", "B", "C", "D"}  # nothing sold is no best seller
    assert best_sellers(sales, top=0) == set()


def test_a_title_change_on_a_best_seller_is_held_and_elsewhere_goes_on() -> None:
    sales = {"HOT-1": 90, "COLD-1": 1}
    rules = HoldRules(best_seller_top=1)
    holds = decide([rename("HOT", "Red mug", "Blue mug"), rename("COLD", "Old", "New")], published=1000,
                   open_orders={}, sales=sales, rules=rules)
    assert [(h.code, h.kind) for h in holds] == [("HOT", "catalog_change")]
    assert "title 'Red mug' -> 'Blue mug'" in holds[0].reason and "best seller" in holds[0].reason
    assert "90 units" in holds[0].reason


def test_a_unit_change_on_a_best_seller_is_held() -> None:
    change = rename("HOT", "Mug", "Mug", uom_before={"HOT-1": "EA"}, uom_after={"HOT-1": "BOX"})
    (hold,) = decide([change], published=1000, open_orders={}, sales={"HOT-1": 5}, rules=HoldRules())
    assert "unit of HOT-1 'EA' -> 'BOX'" in hold.reason


def test_a_best_seller_change_that_is_neither_title_nor_unit_goes_on() -> None:
    change = rename("HOT", "Mug", "Mug", uom_before={"HOT-1": "EA"}, uom_after={"HOT-1": "EA"})
    assert decide([change], published=1000, open_orders={}, sales={"HOT-1": 5}, rules=HoldRules()) == []
    first_time = dataclasses.replace(rename("HOT", "", "Mug"), title_before=None)  # nothing known before
    assert decide([first_time], published=1000,
                  open_orders={}, sales={"HOT-1": 5}, rules=HoldRules()) == []


def test_disabled_rules_hold_nothing() -> None:
    changes = [retire(f"P{i}") for i in range(50)]
    assert decide(changes, published=60, open_orders={"P1-1": 1}, sales={}, rules=HoldRules(enabled=False)) == []


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert HoldRules(**config.catalog_hold_settings()) == HoldRules()
    monkeypatch.setenv("ERPSYNC_CATALOG_HOLD_RETIRE_PCT", "25")
    monkeypatch.setenv("ERPSYNC_CATALOG_HOLD_OPEN_ORDERS", "false")
    monkeypatch.setenv("ERPSYNC_CATALOG_HOLD_BEST_SELLER_TOP", "5")
    monkeypatch.setenv("ERPSYNC_CATALOG_HOLD_DAYS", "7")
    monkeypatch.setenv("ERPSYNC_CATALOG_HOLD_RETIRE_MIN", "3")
    rules = HoldRules(**config.catalog_hold_settings())
    assert (rules.retire_share_pct, rules.open_orders, rules.best_seller_top, rules.days, rules.retire_min) == (
        25, False, 5, 7, 3)
    monkeypatch.setenv("ERPSYNC_CATALOG_HOLDS", "off")
    assert HoldRules(**config.catalog_hold_settings()).enabled is False


@pytest.mark.parametrize(("name", "value"), [
    ("ERPSYNC_CATALOG_HOLD_RETIRE_PCT", "ten"), ("ERPSYNC_CATALOG_HOLD_RETIRE_PCT", "-1"),
    ("ERPSYNC_CATALOG_HOLD_BEST_SELLER_TOP", "1.5"), ("ERPSYNC_CATALOG_HOLD_DAYS", "0"),
    ("ERPSYNC_CATALOG_HOLD_OPEN_ORDERS", "maybe"), ("ERPSYNC_CATALOG_HOLD_RETIRE_MIN", "0"),
])
def test_a_bad_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        config.catalog_hold_settings()
