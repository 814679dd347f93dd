"""A small, honest GraphQL reader for simulators: parse an operation, resolve its arguments and
variables, shape an answer to its selection set, and size it (for cost-based rate limits).

Why not graphql-core: the project does not depend on it, and a simulator needs far less than a
GraphQL server: no schema, no validation beyond what the vendor's rules check. What it does not
understand (fragments, directives other than ``@idempotent``, subscriptions) it refuses by raising
:class:`GraphQLSyntaxError` with the position, so a dialect answers with the vendor's own parse
error shape instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

_TOKEN = re.compile(r"""
    (?P<ws>[\s,\ufeff]+|\#[^\n]*)
  | (?P<block>\"\"\"(?:\\\"\"\"|[^"]|"(?!""))*\"\"\")
  | (?P<string>"(?:\\.|[^"\\\n])*")
  | (?P<number>-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
  | (?P<spread>\.\.\.)
  | (?P<punct>[!$&()\:=@\[\]{}|])
""", re.VERBOSE)


class GraphQLSyntaxError(ValueError):
    """The document is not GraphQL this reader understands; ``line``/``column`` point at it."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.line, self.column = line, column


@dataclass
class Var:
    name: str


@dataclass
class Field:
    name: str
    alias: str | None
    args: dict[str, Any]  # raw values: Var for $x, else Python values (enums as str)
    selections: list[Field]
    line: int
    column: int
    directives: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.alias or self.name

    def arguments(self, variables: dict[str, Any]) -> dict[str, Any]:
        return {k: resolve(v, variables) for k, v in self.args.items()}


@dataclass
class Operation:
    kind: str  # "query" or "mutation"
    name: str | None
    variables: dict[str, tuple[str, Any]]  # $name -> (type as written, default)
    selections: list[Field]


def resolve(value: Any, variables: dict[str, Any]) -> Any:
    if isinstance(value, Var):
        return variables.get(value.name)
    if isinstance(value, list):
        return [resolve(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, variables) for k, v in value.items()}
    return value


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                self.fail(f"Unexpected character {text[pos]!r}", pos)
            kind = m.lastgroup or ""
            if kind != "ws":
                self.tokens.append((kind, m.group(), pos))
            pos = m.end()
        self.i = 0

    def where(self, pos: int) -> tuple[int, int]:
        line = self.text.count("\n", 0, pos) + 1
        return line, pos - (self.text.rfind("\n", 0, pos) + 1) + 1

    def fail(self, message: str, pos: int | None = None) -> NoReturn:
        if pos is None:
            pos = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)
        raise GraphQLSyntaxError(message, *self.where(pos))

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None, kind: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            return self.fail(f"Unexpected end of document, expected {value or kind}")
        if (value is not None and tok[1] != value) or (kind is not None and tok[0] != kind):
            return self.fail(f"Expected {value or kind}, got {tok[1]!r}")
        self.i += 1
        return tok

    def at(self, value: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[1] == value and tok[0] in ("punct", "spread", "name")

    def document(self) -> list[Operation]:
        ops: list[Operation] = []
        while self.peek() is not None:
            ops.append(self.operation())
        if not ops:
            self.fail("The document has no operation")
        return ops

    def operation(self) -> Operation:
        if self.at("{"):
            return Operation("query", None, {}, self.selection_set())
        kind = self.take(kind="name")
        if kind[1] == "fragment":
            self.fail("Fragments are not supported by this simulator", kind[2])
        if kind[1] not in ("query", "mutation"):
            self.fail(f"Unsupported operation type {kind[1]!r} (this simulator reads query and mutation)", kind[2])
        nxt = self.peek()
        name = self.take(kind="name")[1] if nxt is not None and nxt[0] == "name" else None
        variables: dict[str, tuple[str, Any]] = {}
        if self.at("("):
            self.take("(")
            while not self.at(")"):
                self.take("$")
                var = self.take(kind="name")[1]
                self.take(":")
                typ = self.type_ref()
                default = self.value() if self.at("=") and self.take("=") else None
                variables[var] = (typ, default)
            self.take(")")
        if self.at("@"):
            self.fail("Directives on operations are not supported by this simulator")
        return Operation(kind[1], name, variables, self.selection_set())

    def type_ref(self) -> str:
        if self.at("["):
            self.take("[")
            inner = self.type_ref()
            self.take("]")
            out = f"[{inner}]"
        else:
            out = self.take(kind="name")[1]
        if self.at("!"):
            self.take("!")
            out += "!"
        return out

    def selection_set(self) -> list[Field]:
        self.take("{")
        fields: list[Field] = []
        while not self.at("}"):
            if self.at("..."):
                self.fail("Fragments are not supported by this simulator")
            fields.append(self.field())
        self.take("}")
        if not fields:
            self.fail("A selection set must select at least one field")
        return fields

    def field(self) -> Field:
        tok = self.take(kind="name")
        alias, name = None, tok[1]
        if self.at(":"):
            self.take(":")
            alias, name = name, self.take(kind="name")[1]
        args = self.arguments()
        directives: dict[str, dict[str, Any]] = {}
        while self.at("@"):
            at = self.take("@")
            dname = self.take(kind="name")[1]
            if dname != "idempotent":
                self.fail(f"Directive @{dname} is not supported by this simulator", at[2])
            directives[dname] = self.arguments()
        selections = self.selection_set() if self.at("{") else []
        line, column = self.where(tok[2])
        return Field(name, alias, args, selections, line, column, directives)

    def arguments(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if self.at("("):
            self.take("(")
            while not self.at(")"):
                key = self.take(kind="name")[1]
                self.take(":")
                args[key] = self.value()
            self.take(")")
        return args

    def value(self) -> Any:
        tok = self.peek()
        if tok is None:
            return self.fail("Unexpected end of document, expected a value")
        kind, text, _ = tok
        if text == "$" and kind == "punct":
            self.take("$")
            return Var(self.take(kind="name")[1])
        if text == "[" and kind == "punct":
            self.take("[")
            items = []
            while not self.at("]"):
                items.append(self.value())
            self.take("]")
            return items
        if text == "{" and kind == "punct":
            self.take("{")
            obj: dict[str, Any] = {}
            while not self.at("}"):
                key = self.take(kind="name")[1]
                self.take(":")
                obj[key] = self.value()
            self.take("}")
            return obj
        self.i += 1
        if kind == "string":
            import json

            return json.loads(text)
        if kind == "block":
            return text[3:-3].replace('\\"""', '"""')
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "name":
            return {"true": True, "false": False, "null": None}.get(text, text)  # enums stay strings
        return self.fail(f"Unexpected {text!r}, expected a value", tok[2])


def parse(document: str) -> list[Operation]:
    """Every operation in ``document``; raises :class:`GraphQLSyntaxError`."""
    return _Parser(document).document()


def pick_operation(operations: list[Operation], name: str | None) -> Operation:
    """The operation to run, per the GraphQL over HTTP rule: ``operationName`` names it when the
    document holds several."""
    if name:
        for op in operations:
            if op.name == name:
                return op
        raise GraphQLSyntaxError(f"No operation named {name!r}", 1, 1)
    if len(operations) > 1:
        raise GraphQLSyntaxError("An operationName is required when the document holds several operations", 1, 1)
    return operations[0]


class FieldError(Exception):
    """A selected field the simulated type does not have (GraphQL's ``undefinedField``)."""

    def __init__(self, field: Field, type_name: str, path: list[str]) -> None:
        super().__init__(f"Field '{field.name}' doesn't exist on type '{type_name}'")
        self.field, self.type_name, self.path = field, type_name, path


def project(value: Any, selections: list[Field], path: list[str] | None = None) -> Any:
    """``value`` (plain dicts/lists, each object's type in ``__typename``) cut to the selection set,
    keyed by alias. A selected field an object lacks raises :class:`FieldError`; a value may be a
    callable of the field's raw arguments (a nested connection)."""
    path = path or []
    if value is None or not selections:
        return value
    if isinstance(value, list):
        return [project(v, selections, path) for v in value]
    out: dict[str, Any] = {}
    for f in selections:
        if f.name == "__typename":
            out[f.key] = value.get("__typename")
            continue
        if f.name not in value:
            raise FieldError(f, str(value.get("__typename", "Object")), [*path, f.key])
        v = value[f.name]
        if callable(v):
            v = v(f)
        out[f.key] = project(v, f.selections, [*path, f.key])
    return out


CONNECTION_WRAPPERS = ("edges", "node", "nodes", "pageInfo")


def requested_cost(fields: list[Field], variables: dict[str, Any], *, mutation: bool = False,
                   sizes: dict[str, int] | None = None) -> int:
    """Shopify's documented defaults: a scalar costs 0, an object 1, a connection 2 plus the cost
    of the objects its ``first``/``last`` asks for, a mutation 10. ``sizes`` (root field key ->
    nodes returned) turns the requested cost into the actual one."""
    total = 0
    for f in fields:
        if mutation:
            total += 10
            continue
        if not f.selections:
            continue
        args = f.arguments(variables)
        size = args.get("first") or args.get("last")
        if sizes is not None and f.key in sizes and isinstance(size, int):
            size = sizes[f.key]
        if isinstance(size, int):
            inner = [s for s in f.selections if s.name in ("edges", "nodes")]
            per_node = 0
            for s in inner:
                node_fields = s.selections if s.name == "nodes" else [n for e in [s] for n in e.selections if n.name == "node"]
                node_sel = node_fields if s.name == "nodes" else [x for n in node_fields for x in n.selections]
                per_node = max(per_node, 1 + requested_cost(node_sel, variables))
            total += 2 + size * max(per_node, 1)
        elif f.name in CONNECTION_WRAPPERS:
            total += requested_cost(f.selections, variables)
        else:
            total += 1 + requested_cost(f.selections, variables)
    return total
