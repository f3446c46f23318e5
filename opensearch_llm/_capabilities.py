"""What a model takes: media parts, spoken answers, file ids, translation options.

Checked before sending, for the models in the profile table (a model it does not know is left
to the service); a refusal names the models that do take the input, from the same table
(docs/service-facts.md, "Multimodal input"). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from opensearch_llm._content import PART_CAPABILITY, file_ids_of
from opensearch_llm._errors import RequestValidationError
from opensearch_llm._profiles import PROFILES, ModelProfile

#: What each capability is called in an error.
_WHAT = {
    "vision": "images",
    "video": "video",
    "audio_input": "audio input",
    "audio_output": "spoken answers (modalities with 'audio')",
    "file_ids": "uploaded files (fileid://)",
    "translation": "translation_options",
}


@cache
def models_with(capability: str) -> tuple[str, ...]:
    """The models of the profile table that have ``capability`` (a ``ModelProfile`` field)."""
    return tuple(name for name, profile in PROFILES.items() if getattr(profile, capability))


def check_capabilities(
    model: str,
    profile: ModelProfile,
    messages: Sequence[Mapping[str, Any]],
    named: Mapping[str, Any],
    body: Mapping[str, Any],
) -> None:
    """Refuse what ``model`` cannot take; ``RequestValidationError`` names who can.

    ``named`` are the call's own parameters, checked; what ``extra_body`` adds to ``body`` is
    sent as given (it only counts for what a model requires).
    """
    if not profile.known:
        return
    for position, message in enumerate(messages):
        _check_message(model, profile, position, message)
    if "audio" in (named.get("modalities") or ()):
        _require(model, profile, "audio_output", "modalities", named["modalities"])
    if named.get("vl_high_resolution_images"):
        _require(model, profile, "vision", "vl_high_resolution_images", True)
    if named.get("translation_options") is not None:
        _require(model, profile, "translation", "translation_options", named["translation_options"])
    if profile.translation and body.get("translation_options") is None:
        raise RequestValidationError(
            "translation_options",
            None,
            "{'target_lang': ..., 'source_lang'?: ...}: required by the translation model " + model,
        )


def _check_message(
    model: str, profile: ModelProfile, position: int, message: Mapping[str, Any]
) -> None:
    if file_ids_of(message) is not None:
        _require(model, profile, "file_ids", f"messages[{position}].content", message["content"])
    content = message.get("content")
    if not isinstance(content, list):
        return
    for index, part in enumerate(content):
        capability = PART_CAPABILITY.get(part.get("type"))
        if capability is not None:
            where = f"messages[{position}].content[{index}]"
            _require(model, profile, capability, where, part["type"])


def _require(model: str, profile: ModelProfile, capability: str, field: str, value: Any) -> None:
    if getattr(profile, capability):
        return
    takers = ", ".join(models_with(capability))
    raise RequestValidationError(
        field,
        value,
        f"a model that takes {_WHAT[capability]}: {takers} (or a snapshot of one)",
        f"{model} does not take {_WHAT[capability]}.",
    )
