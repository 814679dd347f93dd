"""Errors are values with a reason: each class says whether a retry can help."""

from __future__ import annotations

from typing import Any


class ErpsyncError(Exception):
    """Base of every erpsync error."""


class ConfigError(ErpsyncError):
    """Bad configuration. The message is one line: what is wrong and how to fix it."""


class UnsupportedByConnector(ConfigError, NotImplementedError):
    """The one way an adapter says its system has no such thing (issue 18): raised by the
    adapter interfaces' methods that a connector does not implement, naming the capability of
    the matrix (``erpsync.connectors.capabilities``). Flows read the matrix before asking and
    say once per run what is missing; a flow that asks anyway stops with this one line (a
    ConfigError: nothing is dead-lettered per record)."""

    def __init__(self, connector: str, capability: str, what: str) -> None:
        super().__init__(f"{connector} does not support {what} (capability {capability}): use a connector "
                         "that does or switch the flow off")
        self.connector = connector
        self.capability = capability


class ConnectorError(ErpsyncError):
    """A call to an external system failed."""

    def __init__(
        self,
        message: str,
        *,
        system: str = "",
        status: int | None = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.system = system
        self.status = status
        self.body = body
        self.retry_after = retry_after


class TransientError(ConnectorError):
    """Timeouts, 5xx, 408, 429, connection resets: retrying may succeed."""


class PermanentError(ConnectorError):
    """4xx other than 408/429: retrying the same request will fail again; dead-letter it."""


class AuthError(ConnectorError):
    """Credentials refused (401/403 after a fresh login).

    Not a :class:`PermanentError`: no record is at fault, every later call fails the same way, so
    the whole run stops (the task runtime says which connection to fix) instead of dead-lettering
    each record of the batch. Nothing is lost: the cursor is not advanced, the rerun reads it all.
    """


class UnknownOutcomeError(TransientError):
    """A write was sent but no answer came: it may or may not have been committed.

    The caller must look the record up by its idempotency key before writing again.
    """


class UnsupportedError(ErpsyncError):
    """The target system has no place for this record (Vendure has no customer-specific price
    lists): not a fault of the record, and no retry helps. ``target`` names where it would go
    (``customer-cust-000021-usd``); the flow keeps one dead letter per target with ``reason`` and
    goes on with the rest of the batch."""

    def __init__(self, target: str, reason: str, *, capability: str | None = None) -> None:
        super().__init__(f"{target}: {reason}")
        self.target = target
        self.reason = reason
        #: the capability of the matrix (erpsync.connectors.capabilities) the system lacks, if one
        #: names it: the flow then says so once per run for every target of it
        self.capability = capability


class HostileRecord(ErpsyncError):
    """A record that must not be synced for a reason of its own (``erpsync.limits``: a lookalike
    code, an absurd or invalid price); ``reason`` is the whole dead-letter reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MappingError(ErpsyncError):
    """A record could not be mapped; names the record, the field and the rule."""

    def __init__(self, record: str, field: str, rule: str, value: Any = None) -> None:
        try:
            shown = repr(value)
        except RecursionError:
            shown = "<a value nested too deep to show>"
        if len(shown) > 200:  # a megabyte of broken input is not copied into the reason
            shown = f"{shown[:200]}\u2026 ({len(shown):,} characters)"
        super().__init__(f"record {record}: field {field!r} failed rule {rule!r} (value: {shown})")
        self.record = record
        self.field = field
        self.rule = rule
        self.value = value
