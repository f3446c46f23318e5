"""What a prompt asks for: the tools it wants called, the values it gives, the JSON it expects.

Deterministic reading of the last user message, so that offline a model seems to listen:
``get_weather`` is called for "What is the weather in Paris?", with ``{"city": "Paris"}``. The
rules are in the package docstring (``response_format`` under "Replies", and "Tools"). Pure.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opensearch_llm.emulator._schema import fits, sample_value, top_properties
from opensearch_llm.emulator._text import content_text

#: Words of a tool's name that say what it does, not what it is about ("get_weather": weather).
GENERIC_WORDS = frozenset(
    {
        *("get", "set", "fetch", "find", "search", "lookup", "look", "query", "run", "call"),
        *("make", "do", "use", "tool", "tools", "function", "func", "current", "info", "data"),
        *("list", "read", "the", "and", "for", "with", "from"),
    }
)
#: Words after which a capitalised phrase is a value ("weather in Paris", "a customer named Ada").
VALUE_CUES = ("for", "in", "at", "near", "from", "to", "named", "called", "about")
_QUOTES = (("'", "'"), ('"', '"'), ("`", "`"), ("\u201c", "\u201d"), ("\u2018", "\u2019"))
_QUOTED = re.compile(
    "|".join(
        rf"(?<![\w{re.escape(o)}]){re.escape(o)}([^{re.escape(c)}\n]+?){re.escape(c)}(?!\w)"
        for o, c in _QUOTES
    )
    + "|\u300c([^\u300d\n]+)\u300d"
)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w]|\.\d)")
_CUE = re.compile(rf"(?i:\b(?:{'|'.join(VALUE_CUES)})\b)\s+")
_CAPITALISED_WORD = re.compile(r"[^\W\d_][\w'-]*")
_NAME_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_KEY_TALK = re.compile(r"\b(?:keys?|fields?|propert(?:y|ies))\b", re.I)
_IDENTIFIER = re.compile(r"[A-Za-z_][\w-]*")
_OBJECT_START = re.compile(r'\{\s*"')
_MISSING = object()


# --------------------------------------------------------------------------- which tools


def asked_tools(text: str, names: Sequence[str]) -> list[str]:
    """The tools ``text`` asks for, in order of first mention.

    By name (``get_weather`` as a word); when no name is mentioned, by topic: a tool whose name
    has a non-generic word of 3+ letters ("weather") that occurs as a word (plural too).
    """
    by_name = _in_order(text, names, lambda name: [re.escape(name)], flags=0)
    return by_name or _in_order(text, names, _topic_patterns, flags=re.I)


def _in_order(
    text: str, names: Iterable[str], patterns: Callable[[str], list[str]], flags: int
) -> list[str]:
    found = []
    for name in names:
        starts = [
            match.start()
            for pattern in patterns(name)
            for match in [re.search(rf"(?<![\w-]){pattern}(?![\w-])", text, flags)]
            if match
        ]
        if starts:
            found.append((min(starts), name))
    return [name for _, name in sorted(found)]


def _topic_patterns(name: str) -> list[str]:
    words = {word.lower() for word in _NAME_WORD.findall(name)}
    return [f"{re.escape(word)}s?" for word in sorted(words - GENERIC_WORDS) if len(word) >= 3]


# --------------------------------------------------------------------------- which values


def fill(schema: Any, text: str, tool: str | None = None) -> Any:
    """A value of ``schema`` whose top-level properties take the values ``text`` gives.

    In order, per property: an argument of a literal call ``tool(3, city="x")``; a ``key=value``
    or ``key: value`` pair; for an ``enum``, an option that occurs as a word; for a string (without
    ``format``), the next quoted text, else the next capitalised phrase after a cue word
    (:data:`VALUE_CUES`); for a number, the next number. A value is used only if it validates;
    everything else is a schema sample (``_schema``).
    """
    value = sample_value(schema)
    if not isinstance(value, dict):
        return value
    properties = top_properties(schema)
    given = _Given.read(text, tool, properties, schema)
    for position, (name, prop) in enumerate(properties.items()):
        found = given.value(name, position, prop)
        if found is not _MISSING:
            value[name] = found
    return value


@dataclass
class _Given:
    """The values a prompt gives; ``strings`` and ``numbers`` lose each one a property takes."""

    text: str  # without the literal call and the pairs
    root: Any  # the schema local references point into
    args: list[Any]
    kwargs: dict[str, Any]
    pairs: dict[str, Any]
    strings: list[str]
    numbers: list[int | float]

    @classmethod
    def read(cls, text: str, tool: str | None, properties: Mapping[str, Any], root: Any) -> _Given:
        """What ``text`` gives for ``properties`` (``tool`` names the literal call to read)."""
        args, kwargs, rest = _literal_call(text, tool)
        pairs, rest = _pairs(rest, properties)
        return cls(rest, root, args, kwargs, pairs, _strings(rest), _numbers(rest))

    def value(self, name: str, position: int, prop: dict[str, Any]) -> Any:
        """The first value given for property ``name`` that validates, else missing."""
        explicit = [self.kwargs[name]] if name in self.kwargs else []
        explicit += self.args[position : position + 1]
        explicit += [self.pairs[name.lower()]] if name.lower() in self.pairs else []
        for candidate in explicit:
            fitted = _coerce(candidate, prop, self.root)
            if fitted is not _MISSING:
                return fitted
        if prop.get("enum"):
            return _enum_option(prop["enum"], self.text)
        kinds = _kinds(prop)
        if "string" in kinds and "format" not in prop:
            return self._take(self.strings, prop)
        if kinds & {"integer", "number"}:
            return self._take(self.numbers, prop)
        return _MISSING

    def _take(self, pool: list[Any], prop: dict[str, Any]) -> Any:
        for position, candidate in enumerate(pool):
            fitted = _coerce(candidate, prop, self.root)
            if fitted is not _MISSING:
                del pool[position]
                return fitted
        return _MISSING


def _kinds(prop: dict[str, Any]) -> set[str]:
    declared = prop.get("type")
    kinds = set(declared) if isinstance(declared, list) else {declared}
    for option in (*prop.get("anyOf", ()), *prop.get("oneOf", ())):
        if isinstance(option, dict):
            kinds |= _kinds(option)
    return {kind for kind in kinds if isinstance(kind, str)}


def _coerce(value: Any, schema: dict[str, Any], root: Any) -> Any:
    """``value`` (or its text or number) if it validates against ``schema``, else missing."""
    candidates = [value]
    if isinstance(value, str):
        candidates += _as_numbers(value)
        candidates += [value.lower() == "true"] if value.lower() in ("true", "false") else []
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        candidates.append(str(value))
    if isinstance(value, float) and value.is_integer():
        candidates.insert(0, int(value))
    return next((c for c in candidates if fits(c, schema, root)), _MISSING)


def _as_numbers(text: str) -> list[int | float]:
    try:
        number = float(text)
    except ValueError:
        return []
    return [int(number)] if number.is_integer() else [number]


def _enum_option(options: list[Any], text: str) -> Any:
    for option in options:
        if isinstance(option, str) and re.search(rf"\b{re.escape(option)}\b", text, re.I):
            return option
    return _MISSING


def _literal_call(text: str, tool: str | None) -> tuple[list[Any], dict[str, Any], str]:
    """The arguments of ``tool(...)`` written in ``text``, and the text without that call."""
    match = re.search(rf"(?<![\w-]){re.escape(tool)}\(([^()]*)\)", text) if tool else None
    if match is None:
        return [], {}, text
    try:
        node = ast.parse(f"f({match.group(1)})", mode="eval").body
    except SyntaxError:
        return [], {}, text
    if not isinstance(node, ast.Call):
        return [], {}, text
    args = [_literal(arg) for arg in node.args]
    kwargs = {kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg}
    return args, kwargs, _blank(text, match.span())


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Name):  # a bare word: f(Paris)
        return node.id
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)


def _pairs(text: str, properties: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """``key=value`` / ``key: value`` pairs naming a property, and the text without them."""
    found: dict[str, Any] = {}
    for name in properties:
        pattern = rf"(?<![\w-]){re.escape(name)}\s*[=:]\s*(\"[^\"]*\"|'[^']*'|[^\s,;)}}\]]+)"
        match = re.search(pattern, text, re.I)
        if match:
            raw = match.group(1)
            found[name.lower()] = raw[1:-1] if raw[0] in "\"'" else raw
            text = _blank(text, match.span())
    return found, text


def _blank(text: str, span: tuple[int, int]) -> str:
    start, end = span
    return text[:start] + " " * (end - start) + text[end:]


def _strings(text: str) -> list[str]:
    """Quoted texts in order, then capitalised phrases after cue words, in order."""
    quoted = [_quoted(match) for match in _QUOTED.finditer(text)]
    unquoted = _QUOTED.sub(lambda m: " " * len(m.group()), text)
    return quoted + [phrase for phrase in map(_phrase_after, _CUE.finditer(unquoted)) if phrase]


def _quoted(match: re.Match[str]) -> str:
    return next(group for group in match.groups() if group)


def _phrase_after(cue: re.Match[str]) -> str:
    """The capitalised words right after a cue ("in New York, ..." -> "New York")."""
    text, position = cue.string, cue.end()
    words: list[str] = []
    while True:
        word = _CAPITALISED_WORD.match(text, position)
        if word is None or not word.group()[0].isupper():
            return " ".join(words)
        words.append(word.group())
        position = word.end()
        if text[position : position + 1] != " ":
            return " ".join(words)
        position += 1


def _numbers(text: str) -> list[int | float]:
    return [number for raw in _NUMBER.findall(text) for number in _as_numbers(raw)]


# --------------------------------------------------------------------------- JSON mode


def json_object(messages: Sequence[dict[str, Any]], text: str) -> Any:
    """What JSON mode answers, or None for the default ``{"reply": ...}``.

    A JSON schema written in the messages (the latest one): a value of it, filled from ``text``
    without its JSON. Else, when ``text`` speaks of keys, fields or properties: an object of the
    identifiers it quotes, with string values filled from the rest of ``text``.
    """
    schema = _written_schema(messages)
    if schema is not None:
        return fill(schema, _without_json(text))
    if not _KEY_TALK.search(text):
        return None
    keys = [_quoted(m) for m in _QUOTED.finditer(text) if _IDENTIFIER.fullmatch(_quoted(m))]
    if not keys:
        return None
    rest = _QUOTED.sub(lambda m: " " * len(m.group()) if _quoted(m) in keys else m.group(), text)
    properties = {key: {"type": "string"} for key in dict.fromkeys(keys)}
    return fill({"type": "object", "properties": properties, "required": list(properties)}, rest)


def _written_schema(messages: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The last JSON object with ``properties`` written in the messages, if any."""
    for message in reversed(messages):
        text = content_text(message.get("content"))
        schemas = [v for v, _ in _json_objects(text) if isinstance(v.get("properties"), dict)]
        if schemas:
            return schemas[-1]
    return None


def _without_json(text: str) -> str:
    for _, span in _json_objects(text):
        text = _blank(text, span)
    return text


def _json_objects(text: str) -> list[tuple[dict[str, Any], tuple[int, int]]]:
    """The outermost JSON objects written in ``text``, with their spans."""
    decoder, found, position = json.JSONDecoder(), [], 0
    while (start := _OBJECT_START.search(text, position)) is not None:
        try:
            value, position = decoder.raw_decode(text, start.start())
        except ValueError:
            position = start.end()
            continue
        if isinstance(value, dict):
            found.append((value, (start.start(), position)))
    return found
