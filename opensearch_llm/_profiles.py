"""Per-model profiles: what each model can do, and the policy that follows from it.

Sources: api-docs 003 (model list) and the design's notes on thinking models. A name that is not
in the table is matched by its longest known prefix (so dated snapshots and ``-latest`` aliases
inherit their family), then by name patterns, then gets safe defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

ThinkingMode = Literal["none", "hybrid", "only"]


@dataclass(frozen=True)
class ModelProfile:
    """What a model accepts: context, output limit, thinking, streaming, tools and formats."""

    context_window: int = 32_768
    max_output: int = 8_192
    #: ``none``: never thinks; ``hybrid``: ``enable_thinking`` switches it; ``only``: always thinks.
    thinking: ThinkingMode = "none"
    #: For hybrid models: whether thinking is on when ``enable_thinking`` is not sent.
    thinking_default: bool = False
    #: The service rejects non-streamed calls.
    stream_only: bool = False
    tools: bool = True
    #: Native ``response_format: {"type": "json_schema"}``.
    json_schema: bool = False
    vision: bool = False
    known: bool = True


DEFAULT_PROFILE = ModelProfile(known=False)

_COMMERCIAL = ModelProfile(context_window=131_072, max_output=16_384, json_schema=True)
_HYBRID_COMMERCIAL = replace(_COMMERCIAL, thinking="hybrid", thinking_default=False)
_OPEN_HYBRID = ModelProfile(
    context_window=131_072, max_output=16_384, thinking="hybrid", thinking_default=True
)
_OPEN_SMALL_HYBRID = replace(_OPEN_HYBRID, context_window=32_768, max_output=8_192)
_THINKING_ONLY = ModelProfile(
    context_window=131_072, max_output=32_768, thinking="only", stream_only=True
)
_INSTRUCT = ModelProfile(context_window=131_072, max_output=32_768)
_QWEN25 = ModelProfile(context_window=131_072, max_output=8_192)
_QWEN25_1M = replace(_QWEN25, context_window=1_000_000)
_VISION = ModelProfile(context_window=131_072, max_output=8_192, vision=True)

PROFILES: dict[str, ModelProfile] = {
    # Model Studio commercial (api-docs 003)
    "qwen3-max": ModelProfile(context_window=262_144, max_output=65_536, json_schema=True),
    "qwen-max": ModelProfile(context_window=32_768, max_output=8_192, json_schema=True),
    "qwen3.5-plus": replace(
        _HYBRID_COMMERCIAL, context_window=1_000_000, max_output=65_536, thinking_default=True
    ),
    "qwen-plus": _HYBRID_COMMERCIAL,
    "qwen-flash": replace(_HYBRID_COMMERCIAL, context_window=1_000_000, max_output=32_768),
    "qwen-turbo": replace(_HYBRID_COMMERCIAL, context_window=1_000_000, max_output=16_384),
    "qwen3-coder-plus": replace(_COMMERCIAL, context_window=1_000_000, max_output=65_536),
    "qwen3-coder-flash": replace(_COMMERCIAL, context_window=1_000_000, max_output=65_536),
    "qwen-coder-plus": ModelProfile(context_window=131_072, max_output=8_192),
    "qwen-coder-turbo": ModelProfile(context_window=131_072, max_output=8_192),
    "qwq-plus": replace(_THINKING_ONLY, max_output=8_192),
    "qwen-math-plus": ModelProfile(context_window=4_096, max_output=3_072, tools=False),
    "qwen-math-turbo": ModelProfile(context_window=4_096, max_output=3_072, tools=False),
    # Model Studio open source (api-docs 003)
    "qwen3.5-397b-a17b": replace(_OPEN_HYBRID, context_window=262_144, max_output=65_536),
    "qwen3-next-80b-a3b-thinking": _THINKING_ONLY,
    "qwen3-next-80b-a3b-instruct": _INSTRUCT,
    "qwen3-235b-a22b-thinking-2507": _THINKING_ONLY,
    "qwen3-235b-a22b-instruct-2507": _INSTRUCT,
    "qwen3-30b-a3b-thinking-2507": _THINKING_ONLY,
    "qwen3-30b-a3b-instruct-2507": _INSTRUCT,
    "qwen3-235b-a22b": _OPEN_HYBRID,
    "qwen3-32b": _OPEN_HYBRID,
    "qwen3-30b-a3b": _OPEN_HYBRID,
    "qwen3-14b": _OPEN_HYBRID,
    "qwen3-8b": _OPEN_HYBRID,
    "qwen3-4b": _OPEN_SMALL_HYBRID,
    "qwen3-1.7b": _OPEN_SMALL_HYBRID,
    "qwen3-0.6b": _OPEN_SMALL_HYBRID,
    "qwen2.5-14b-instruct-1m": _QWEN25_1M,
    "qwen2.5-7b-instruct-1m": _QWEN25_1M,
    "qwen2.5-72b-instruct": _QWEN25,
    "qwen2.5-32b-instruct": _QWEN25,
    "qwen2.5-14b-instruct": _QWEN25,
    "qwen2.5-7b-instruct": _QWEN25,
    "qwen2.5-3b-instruct": replace(_QWEN25, context_window=32_768),
    "qwen2.5-1.5b-instruct": replace(_QWEN25, context_window=32_768),
    "qwen2.5-0.5b-instruct": replace(_QWEN25, context_window=32_768),
    # Vision-language models take image parts in user messages.
    "qwen-vl-max": _VISION,
    "qwen-vl-plus": _VISION,
    "qwen3-vl-plus": replace(_VISION, context_window=262_144, max_output=32_768),
    "qwen3-vl-flash": replace(_VISION, context_window=262_144, max_output=32_768),
    # OpenSearch LLM service (api-docs 000) and knowledge-llm models (api-docs 002)
    "ops-qwen-turbo": ModelProfile(context_window=131_072, max_output=8_192),
    "opensearch-llama2-13b": ModelProfile(context_window=4_096, max_output=2_048, tools=False),
    "opensearch-falcon-7b": ModelProfile(context_window=2_048, max_output=1_024, tools=False),
    # AI gateway sample model (api-docs 001)
    "gpt-3.5-turbo": ModelProfile(context_window=16_385, max_output=4_096),
}

# Region suffixes (api-docs 003 "US" models) that do not change what a model can do.
_REGION_SUFFIXES = ("-us",)


@lru_cache(maxsize=512)
def get_profile(model: str) -> ModelProfile:
    """The profile of ``model``; unknown names get safe defaults (``known=False``)."""
    name = model.strip().lower()
    for suffix in _REGION_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name in PROFILES:
        return PROFILES[name]
    family = _longest_prefix(name)
    if family is not None:
        return PROFILES[family]
    if name.startswith("qwq") or "-thinking" in name:
        return replace(_THINKING_ONLY, known=False)
    return DEFAULT_PROFILE


def _longest_prefix(name: str) -> str | None:
    matches = [key for key in PROFILES if name.startswith(key + "-")]
    return max(matches, key=len) if matches else None


def thinking_enabled(profile: ModelProfile, enable_thinking: bool | None) -> bool:
    """Whether the model will think, given what the caller sent for ``enable_thinking``."""
    if profile.thinking == "only":
        return True
    if profile.thinking == "none":
        return False
    return profile.thinking_default if enable_thinking is None else enable_thinking
