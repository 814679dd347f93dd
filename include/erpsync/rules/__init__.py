"""Business rules: pure functions on canonical records, no I/O, so they are tested in microseconds."""
