"""A cross-reference names real records (issue 16 item 3): an order once bound to the string
"None" turned a failed sale into a false success. Refused in code (``upsert_xref``) and by the
table's CHECK (migration 0011), so no path around the store's method can write one either."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from erpsync.state import StateStore


@pytest.fixture
def store(tmp_path) -> StateStore:
    s = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    s.migrate()
    yield s
    s.close()


@pytest.mark.parametrize("bad", ["None", "", "  ", "null", "NONE", None])
def test_upsert_xref_refuses_an_id_standing_for_nothing(store: StateStore, bad: object) -> None:
    with pytest.raises(ValueError, match="not an id"):
        store.upsert_xref("erp", "sales_order", "O100001", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an id"):
        store.upsert_xref("erp", "sales_order", bad, "SO-000001")  # type: ignore[arg-type]
    assert store.get_xref("erp", "sales_order", "O100001") is None


def test_the_table_refuses_it_too(store: StateStore) -> None:
    insert = sa.text("INSERT INTO xref (system, entity, external_id, internal_id, last_synced_at) "
                     "VALUES ('erp', 'sales_order', 'O1', :ref, CURRENT_TIMESTAMP)")
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(insert, {"ref": "None"})
    with store.engine.begin() as conn:
        conn.execute(insert, {"ref": "SO-000001"})
    assert store.get_xref("erp", "sales_order", "O1").internal_id == "SO-000001"


def test_one_alembic_head(store: StateStore) -> None:
    from alembic.script import ScriptDirectory

    from erpsync.state.store import alembic_config

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"several Alembic heads {heads}: add a merge revision"
    assert store.current_revision() == heads[0]
