"""One Alembic head (issue 19): the state store's migrations form one line of history, so
``alembic upgrade head`` and ``downgrade -1`` mean one thing and two features cannot each add a
revision off the same parent without someone deciding their order (a merge revision)."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from erpsync.state.store import alembic_config


def test_the_migrations_have_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    heads = script.get_heads()
    assert len(heads) == 1, (
        f"the state store's migrations have {len(heads)} heads ({', '.join(sorted(heads))}): set the new "
        "revision's down_revision to the current head, or add a merge revision "
        f"(alembic merge -m 'merge' {' '.join(sorted(heads))}) whose down_revision names them all")
    # every revision is reachable from that head: nothing left dangling off the line
    reachable = {rev.revision for rev in script.walk_revisions(base="base", head=heads[0])}
    assert reachable == {rev.revision for rev in script.walk_revisions()}
