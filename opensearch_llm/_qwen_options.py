"""Checks of the Qwen extras whose values are objects: web search, translation, spoken answers.

Each key this package knows is checked against its documented type or values; a key it does
not know is sent as given, for the service to judge (docs/service-facts.md, "Qwen extras").
Pure; each failure names the field, the value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opensearch_llm._errors import RequestValidationError

SEARCH_STRATEGIES = ("turbo", "max", "agent", "agent_max")
CITATION_FORMATS = ("[<number>]", "[ref_<number>]")
MODALITIES = ("text", "audio")
AUDIO_FORMATS = ("wav",)

Rule = tuple[Callable[[Any], bool], str]


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _one_of(choices: tuple[str, ...]) -> Rule:
    return (lambda value: value in choices), "one of " + ", ".join(choices)


def _is_pairs(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(pair, Mapping) and _is_text(pair.get("source")) and _is_text(pair.get("target"))
        for pair in value
    )


_BOOL: Rule = (_is_bool, "true or false")
_TEXT: Rule = (_is_text, "a non-empty string")
_PAIRS: Rule = (_is_pairs, "a list of {'source': str, 'target': str}")

SEARCH_RULES: dict[str, Rule] = {
    "forced_search": _BOOL,
    "enable_source": _BOOL,
    "enable_citation": _BOOL,
    "enable_search_extension": _BOOL,
    "prepend_search_result": _BOOL,
    "search_strategy": _one_of(SEARCH_STRATEGIES),
    "citation_format": _one_of(CITATION_FORMATS),
    "freshness": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
        "a number of days (an integer > 0)",
    ),
    "assigned_site_list": (
        lambda v: isinstance(v, list) and all(_is_text(site) for site in v),
        "a list of site names",
    ),
    "intention_options": (lambda v: isinstance(v, Mapping), "a JSON object (dict)"),
}
TRANSLATION_RULES: dict[str, Rule] = {
    "source_lang": _TEXT,
    "target_lang": _TEXT,
    "terms": _PAIRS,
    "tm_list": _PAIRS,
    "domains": _TEXT,
}
AUDIO_RULES: dict[str, Rule] = {"voice": _TEXT, "format": _one_of(AUDIO_FORMATS)}


def modalities_ok(value: Any) -> bool:
    """``["text"]`` or ``["text", "audio"]`` (in any order, without repeats)."""
    return (
        isinstance(value, list)
        and "text" in value
        and all(item in MODALITIES for item in value)
        and len(set(value)) == len(value)
    )


MODALITIES_RULE: Rule = (modalities_ok, "['text'] or ['text', 'audio']")


def check_object(name: str, value: Mapping[str, Any], rules: Mapping[str, Rule]) -> None:
    """Check the keys of ``value`` that ``rules`` knows."""
    for key, item in value.items():
        rule = rules.get(key)
        if rule is not None and not rule[0](item):
            raise RequestValidationError(f"{name}.{key}", item, rule[1])


def check_qwen_options(params: Mapping[str, Any]) -> None:
    """Check the object-valued extras of a call, each on its own."""
    if params.get("search_options") is not None:
        check_object("search_options", params["search_options"], SEARCH_RULES)
    if params.get("translation_options") is not None:
        options = params["translation_options"]
        check_object("translation_options", options, TRANSLATION_RULES)
        if not _is_text(options.get("target_lang")):
            raise RequestValidationError(
                "translation_options.target_lang",
                options.get("target_lang"),
                "the language to translate into, e.g. 'English' (required)",
            )
    if params.get("audio") is not None:
        check_object("audio", params["audio"], AUDIO_RULES)


def check_option_pairs(body: Mapping[str, Any]) -> None:
    """The extras that only work together: checked on the whole request body.

    ``search_options`` needs ``enable_search: true``; ``audio`` (the voice) goes with
    ``modalities`` that include ``audio``, and the other way round.
    """
    if body.get("search_options") is not None and body.get("enable_search") is not True:
        raise RequestValidationError(
            "search_options", body["search_options"], "set only with enable_search=True"
        )
    modalities = body.get("modalities")
    if modalities is not None and not modalities_ok(modalities):  # set through extra_body
        raise RequestValidationError("modalities", modalities, MODALITIES_RULE[1])
    audio = body.get("audio")
    speaks = "audio" in (modalities or ())
    if audio is not None and not speaks:
        raise RequestValidationError("audio", audio, "set only with modalities=['text', 'audio']")
    if speaks and not (isinstance(audio, Mapping) and _is_text(audio.get("voice"))):
        raise RequestValidationError(
            "audio", audio, "{'voice': a voice such as 'Cherry', 'format': 'wav'} with audio output"
        )
