"""What a model family takes, as the prompt engine needs to know it: :class:`FamilySpec` and :class:`ParamSpec`.

The engine never hard-codes the families: it reads their parameters (names, kinds, ranges, choices) from these
specs, which the service builds from its model registry (:func:`family_from_json_schema` reads a pydantic
model's JSON schema). Words that name a family ("chorale", "jig") come from :attr:`FamilySpec.keywords` and from
the ``[families.ID]`` table of the vocabulary; a family with neither is still chosen by its description.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tunesmith.errors import ParameterError

Kind = Literal["int", "float", "str", "enum", "bool", "list", "mapping"]
KINDS: tuple[str, ...] = ("int", "float", "str", "enum", "bool", "list", "mapping")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a family.

    ``kind``: ``int``/``float`` (with optional ``minimum``/``maximum``), ``str``, ``enum`` (one of ``choices``),
    ``bool``, ``list`` (a subset of ``choices``, e.g. song tracks) or ``mapping`` (``keys`` -> one of ``choices``,
    e.g. track -> instrument). ``default`` is what the family uses when the prompt says nothing.
    """

    name: str
    kind: Kind
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    default: Any = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ParameterError(f"parameter {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}",
                                 field="params")
        if self.kind in ("enum", "list") and not self.choices:
            raise ParameterError(f"parameter {self.name!r} of kind {self.kind} needs choices", field="params")

    def clamp(self, value: float) -> float:
        """``value`` held inside [minimum, maximum]."""
        if self.minimum is not None:
            value = max(value, self.minimum)
        if self.maximum is not None:
            value = min(value, self.maximum)
        return value


@dataclass(frozen=True)
class FamilySpec:
    """A model family as the prompt engine sees it: id, description, parameters, and words that name it."""

    id: str
    description: str
    params: tuple[ParamSpec, ...]
    keywords: tuple[str, ...] = ()
    priority: float = 0.0  # breaks ties between families with equal evidence (the general-purpose one highest)
    _by_name: dict[str, ParamSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ParameterError(f"family {self.id!r} lists a parameter twice", field="params")
        object.__setattr__(self, "_by_name", {p.name: p for p in self.params})

    def param(self, name: str) -> ParamSpec | None:
        """The parameter called ``name``, or None if the family does not take it."""
        return self._by_name.get(name)

    def takes(self, name: str) -> bool:
        return name in self._by_name


def family_from_json_schema(family_id: str, description: str, schema: Mapping[str, Any], *,
                            keywords: Sequence[str] = (), priority: float = 0.0) -> FamilySpec:
    """A FamilySpec from a JSON schema (e.g. a pydantic model's ``model_json_schema()``).

    Reads each property's type (integer, number, string, boolean, array, object), ``enum`` (also through
    ``$ref``/``anyOf``/``allOf``), ``minimum``/``maximum`` (and the exclusive forms), array ``items`` enums,
    object ``propertyNames``/``additionalProperties`` enums, ``default`` and ``description``.
    """
    defs = schema.get("$defs", {}) or schema.get("definitions", {})

    def resolve(node: Mapping[str, Any]) -> dict[str, Any]:
        node = dict(node)
        if "$ref" in node:
            node = {**resolve(defs.get(node.pop("$ref").rsplit("/", 1)[-1], {})), **node}
        for combiner in ("anyOf", "oneOf", "allOf"):
            options = [resolve(o) for o in node.pop(combiner, []) if o.get("type") != "null"]
            if options:
                node = {**options[0], **node}
        return node

    params = []
    for name, raw in schema.get("properties", {}).items():
        node = resolve(raw)
        kind: Kind
        choices: tuple[str, ...] = ()
        keys: tuple[str, ...] = ()
        if "enum" in node:
            kind, choices = "enum", tuple(str(v) for v in node["enum"])
        elif node.get("type") == "integer":
            kind = "int"
        elif node.get("type") == "number":
            kind = "float"
        elif node.get("type") == "boolean":
            kind = "bool"
        elif node.get("type") == "array":
            items = resolve(node.get("items", {}))
            kind, choices = ("list", tuple(str(v) for v in items["enum"])) if "enum" in items else ("str", ())
        elif node.get("type") == "object":
            kind = "mapping"
            keys = tuple(str(v) for v in resolve(node.get("propertyNames", {})).get("enum", ()))
            extra = node.get("additionalProperties")
            choices = tuple(str(v) for v in resolve(extra).get("enum", ())) if isinstance(extra, Mapping) else ()
        else:
            kind = "str"
        low = node.get("minimum", node.get("exclusiveMinimum"))
        high = node.get("maximum", node.get("exclusiveMaximum"))
        params.append(ParamSpec(name, kind, node.get("description", ""), low, high, choices, keys, node.get("default")))
    return FamilySpec(family_id, description, tuple(params), tuple(keywords), priority)
