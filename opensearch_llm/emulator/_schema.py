"""Sample values that validate against a JSON schema (for tool arguments and ``json_schema``).

Deterministic: strings are ``"sample <property name>"`` (or a value of their ``format``), numbers
and integers are 1 / 1.5 moved into their bounds, booleans are true, enums and ``anyOf``/``oneOf``
take their first option, arrays get ``minItems`` items (at least one), objects get every property.
Local ``$ref`` (``#/$defs/...``, ``#/definitions/...``) are followed. ``fits`` tells whether a
value read from a prompt (``_prompt``) validates against a property, so it can replace the sample.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

_MAX_DEPTH = 12
_FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "hostname": "example.com",
}


def sample_arguments(parameters: Any) -> dict[str, Any]:
    """Arguments for a tool whose ``parameters`` schema is given (``{}`` for an empty schema)."""
    value = _Sampler(parameters).value(parameters, "value", 0, 0)
    return value if isinstance(value, dict) else {}


def sample_value(schema: Any) -> Any:
    """A value that validates against ``schema``."""
    return _Sampler(schema).value(schema, "value", 0, 0)


def top_properties(schema: Any) -> dict[str, dict[str, Any]]:
    """The properties of an object ``schema``, each with its ``$ref`` and ``allOf`` resolved."""
    if not isinstance(schema, dict):
        return {}
    sampler = _Sampler(schema)
    properties = sampler.resolve(schema, 0).get("properties") or {}
    return {
        name: sampler.resolve(prop, 1) if isinstance(prop, dict) else {}
        for name, prop in properties.items()
    }


def _size(schema: dict[str, Any], key: str, default: int) -> int:
    """A length or count bound of ``schema``; ``default`` when it is missing or not a number."""
    value = schema.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def fits(value: Any, schema: dict[str, Any], root: Any) -> bool:
    """Whether a scalar ``value`` (or a list of them) validates against ``schema``.

    ``root`` is the document that local references point into. Objects never fit: they are sampled.
    A pattern Python's ``re`` does not read is one the value does not fit: the sample is used
    instead (a bound that is not a number is ignored, as when sampling).
    """
    try:
        return _fits(value, schema, root)
    except re.error:
        return False


def _fits(value: Any, schema: dict[str, Any], root: Any) -> bool:
    schema = _Sampler(root).resolve(schema, 0)
    if "const" in schema:
        return bool(value == schema["const"])
    if schema.get("enum"):
        return value in schema["enum"]
    options = [
        o for key in ("anyOf", "oneOf") for o in schema.get(key) or () if isinstance(o, dict)
    ]
    if options:
        return any(_fits(value, option, root) for option in options)
    declared = schema.get("type")
    kinds = declared if isinstance(declared, list) else [_type_of(schema)]
    return any(_FITS.get(kind, _never)(value, schema, root) for kind in kinds)


class _Sampler:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.by_type: dict[str, Callable[[dict[str, Any], str, int, int], Any]] = {
            "object": self._object,
            "array": self._array,
            "string": _string,
            "integer": _integer,
            "number": _number,
            "boolean": lambda schema, name, depth, variant: True,
            "null": lambda schema, name, depth, variant: None,
        }

    def value(self, schema: Any, name: str, depth: int, variant: int) -> Any:
        if not isinstance(schema, dict):
            return f"sample {name}"
        schema = self.resolve(schema, depth)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            options = schema["enum"]
            return options[variant % len(options)]
        option = _first_option(schema)
        if option is not None:
            return self.value(option, name, depth + 1, variant)
        return self.by_type[_type_of(schema)](schema, name, depth, variant)

    def resolve(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        """``schema`` with its ``$ref`` followed and its ``allOf`` merged."""
        while "$ref" in schema and depth < _MAX_DEPTH:
            target = _follow(self.root, schema["$ref"])
            rest = {key: value for key, value in schema.items() if key != "$ref"}
            schema = {**target, **rest}
            depth += 1
        if "allOf" in schema:
            merged = {key: value for key, value in schema.items() if key != "allOf"}
            for part in schema["allOf"]:
                if isinstance(part, dict):
                    merged = _merge(merged, self.resolve(part, depth + 1))
            schema = merged
        return schema

    def _object(self, schema: dict[str, Any], name: str, depth: int, variant: int) -> Any:
        properties = schema.get("properties") or {}
        required = [key for key in schema.get("required") or () if isinstance(key, str)]
        keys = list(properties) if depth < _MAX_DEPTH // 2 else []
        keys += [key for key in required if key not in keys]
        return {key: self.value(properties.get(key, {}), key, depth + 1, variant) for key in keys}

    def _array(self, schema: dict[str, Any], name: str, depth: int, variant: int) -> Any:
        count = max(_size(schema, "minItems", 0), 0 if depth >= _MAX_DEPTH else 1)
        if "maxItems" in schema:
            count = min(count, _size(schema, "maxItems", count))
        prefix = schema.get("prefixItems") or []
        items = schema.get("items", {})
        return [
            self.value(prefix[i] if i < len(prefix) else items, name, depth + 1, i)
            for i in range(count)
        ]


def _type_of(schema: dict[str, Any]) -> str:
    declared = schema.get("type")
    if isinstance(declared, list):
        declared = next((kind for kind in declared if kind != "null"), "null")
    if isinstance(declared, str):
        return declared
    if "properties" in schema or "required" in schema:
        return "object"
    return "array" if "items" in schema else "string"


def _first_option(schema: dict[str, Any]) -> Any:
    for key in ("anyOf", "oneOf"):
        options = [option for option in schema.get(key) or () if isinstance(option, dict)]
        if options:
            return next((o for o in options if o.get("type") != "null"), options[0])
    return None


def _follow(root: Any, ref: Any) -> dict[str, Any]:
    if not (isinstance(ref, str) and ref.startswith("#")):
        return {}
    node = root
    for part in filter(None, ref[1:].split("/")):
        key = part.replace("~1", "/").replace("~0", "~")
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **extra}
    if "properties" in base or "properties" in extra:
        merged["properties"] = {**base.get("properties", {}), **extra.get("properties", {})}
    merged["required"] = [*base.get("required", []), *extra.get("required", [])]
    return merged


def _string(schema: dict[str, Any], name: str, depth: int, variant: int) -> str:
    text = _FORMATS.get(str(schema.get("format"))) or (
        f"sample {name} {variant + 1}" if variant else f"sample {name}"
    )
    text += "x" * max(_size(schema, "minLength", 0) - len(text), 0)
    high = schema.get("maxLength")
    return text if high is None else text[: int(high)]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bounds(schema: dict[str, Any]) -> tuple[float | None, bool, float | None, bool]:
    """Lower bound, whether it is exclusive, upper bound, whether it is exclusive."""
    low, low_open = schema.get("minimum"), False
    if _is_number(schema.get("exclusiveMinimum")):
        low, low_open = schema["exclusiveMinimum"], True
    high, high_open = schema.get("maximum"), False
    if _is_number(schema.get("exclusiveMaximum")):
        high, high_open = schema["exclusiveMaximum"], True
    return low, low_open, high, high_open


def _integer(schema: dict[str, Any], name: str, depth: int, variant: int) -> int:
    low, low_open, high, high_open = _bounds(schema)
    first = None if low is None else (math.floor(low) + 1 if low_open else math.ceil(low))
    last = None if high is None else (math.ceil(high) - 1 if high_open else math.floor(high))
    value = 1 + variant
    if first is not None:
        value = max(value, first)
    if last is not None:
        value = min(value, last)
    step = schema.get("multipleOf")
    if isinstance(step, int) and step > 0 and value % step:
        value = math.ceil(value / step) * step
        if last is not None and value > last:
            value -= step
    return value


def _number(schema: dict[str, Any], name: str, depth: int, variant: int) -> float:
    low, _, high, _ = _bounds(schema)
    if low is not None and high is not None:
        return (low + high) / 2
    value = 1.5 + variant
    if low is not None:
        value = max(value, low + 1)
    if high is not None:
        value = min(value, high - 1)
    return value


def _never(value: Any, schema: dict[str, Any], root: Any) -> bool:
    return False


def _fits_string(value: Any, schema: dict[str, Any], root: Any) -> bool:
    if not isinstance(value, str) or "format" in schema:
        return False
    if not _size(schema, "minLength", 0) <= len(value) <= _size(schema, "maxLength", len(value)):
        return False
    pattern = schema.get("pattern")
    return not isinstance(pattern, str) or re.search(pattern, value) is not None


def _within(size: int, schema: dict[str, Any], low: str, high: str) -> bool:
    return _size(schema, low, 0) <= size <= _size(schema, high, size)


def _fits_number(value: Any, schema: dict[str, Any], root: Any) -> bool:
    if not _is_number(value):
        return False
    low, low_open, high, high_open = _bounds(schema)
    above = low is None or value > low or (value == low and not low_open)
    below = high is None or value < high or (value == high and not high_open)
    if not (above and below):
        return False
    step = schema.get("multipleOf")
    if not isinstance(step, (int, float)) or step <= 0:
        return True
    return float(value / step).is_integer()


def _fits_integer(value: Any, schema: dict[str, Any], root: Any) -> bool:
    return isinstance(value, int) and _fits_number(value, schema, root)


def _fits_array(value: Any, schema: dict[str, Any], root: Any) -> bool:
    if not isinstance(value, list):
        return False
    if not _within(len(value), schema, "minItems", "maxItems"):
        return False
    items = schema.get("items")
    return not isinstance(items, dict) or all(fits(item, items, root) for item in value)


_FITS: dict[str, Callable[[Any, dict[str, Any], Any], bool]] = {
    "string": _fits_string,
    "integer": _fits_integer,
    "number": _fits_number,
    "boolean": lambda value, schema, root: isinstance(value, bool),
    "null": lambda value, schema, root: value is None,
    "array": _fits_array,
}
