"""Alembic environment of the state store, shipped inside the package (see `StateStore.migrate`)."""
