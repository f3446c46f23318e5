"""Per-model profiles: what each model can do (the policy that follows is in ``_thinking``).

Every row names its source and the date it was read (``PROFILE_SOURCES``): the model names of
``api-docs/003`` (Model Studio, "OpenAI compatible - Chat"), the limits of Model Studio's model
list, the modality pages (Qwen-VL, Qwen-Omni, Qwen-Long, Qwen-MT) and what users report of
thinking models (docs/service-facts.md, "Thinking models", "Multimodal input"). A name that is
not in the table is matched by its longest known prefix (so dated snapshots and ``-latest``
aliases inherit their family), then by name patterns, then gets safe defaults.
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
    #: Image parts (``image_url``) in user messages.
    vision: bool = False
    #: Video parts: a file (``video_url``) or a list of frames (``video``).
    video: bool = False
    #: Audio parts (``input_audio``).
    audio_input: bool = False
    #: Spoken answers: ``modalities=["text", "audio"]`` with ``audio={"voice", "format"}``.
    audio_output: bool = False
    #: Uploaded files referenced as ``fileid://`` system messages (Qwen-Long).
    file_ids: bool = False
    #: A translation model: ``translation_options`` (with ``target_lang``) is required.
    translation: bool = False
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
_VISION = ModelProfile(context_window=131_072, max_output=8_192, vision=True, video=True)
_QWEN3_VL = replace(_VISION, context_window=262_144, max_output=32_768, thinking="hybrid")
_OMNI = ModelProfile(
    context_window=32_768,
    max_output=2_048,
    stream_only=True,
    tools=False,
    vision=True,
    video=True,
    audio_input=True,
    audio_output=True,
)
_TRANSLATION = ModelProfile(context_window=16_384, max_output=8_192, tools=False, translation=True)

PROFILES: dict[str, ModelProfile] = {
    # Model Studio commercial (its model list)
    "qwen3-max": ModelProfile(context_window=262_144, max_output=65_536, json_schema=True),
    "qwen-max": ModelProfile(context_window=32_768, max_output=8_192, json_schema=True),
    "qwen3.5-plus": replace(
        _HYBRID_COMMERCIAL,
        context_window=1_000_000,
        max_output=65_536,
        thinking_default=True,
        vision=True,
        video=True,
    ),
    "qwen-long": ModelProfile(context_window=10_000_000, max_output=8_192, file_ids=True),
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
    # Model Studio open source (its model list)
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
    # Vision-language models take image and video parts in user messages.
    "qwen-vl-max": _VISION,
    "qwen-vl-plus": _VISION,
    "qwen3-vl-plus": _QWEN3_VL,
    "qwen3-vl-flash": _QWEN3_VL,
    # Omni models take images, video and audio, answer in text or speech, and only stream.
    "qwen3-omni-flash": replace(
        _OMNI, context_window=65_536, max_output=16_384, tools=True, thinking="hybrid"
    ),
    "qwen-omni-turbo": _OMNI,
    "qwen2.5-omni-7b": _OMNI,
    # Translation models take one user message and translation_options.
    "qwen-mt-plus": _TRANSLATION,
    "qwen-mt-turbo": _TRANSLATION,
    "qwen-mt-flash": _TRANSLATION,
    "qwen-mt-lite": _TRANSLATION,
    # OpenSearch LLM service and knowledge-llm models (their pages)
    "ops-qwen-turbo": ModelProfile(context_window=131_072, max_output=8_192),
    "opensearch-llama2-13b": ModelProfile(context_window=4_096, max_output=2_048, tools=False),
    "opensearch-falcon-7b": ModelProfile(context_window=2_048, max_output=1_024, tools=False),
    # AI gateway sample model (its page)
    "gpt-3.5-turbo": ModelProfile(context_window=16_385, max_output=4_096),
}

_READ = "read 2026-12-04"
_NAMES = f"names: api-docs/003 (Model Studio, OpenAI compatible - Chat, supported models), {_READ}"
_LIMITS = "limits: Model Studio model list (not in api-docs; as read before 2026-12-04)"
_MODEL_STUDIO = f"{_NAMES}; {_LIMITS}"
_SOURCES_BY_GROUP: dict[str, tuple[str, ...]] = {
    _MODEL_STUDIO: (
        "qwen3-max",
        "qwen-max",
        "qwen-plus",
        "qwen-flash",
        "qwen-turbo",
        "qwen3-coder-plus",
        "qwen3-coder-flash",
        "qwen-coder-plus",
        "qwen-coder-turbo",
        "qwq-plus",
        "qwen-math-plus",
        "qwen-math-turbo",
        "qwen3.5-397b-a17b",
        "qwen3-next-80b-a3b-thinking",
        "qwen3-next-80b-a3b-instruct",
        "qwen3-235b-a22b-thinking-2507",
        "qwen3-235b-a22b-instruct-2507",
        "qwen3-30b-a3b-thinking-2507",
        "qwen3-30b-a3b-instruct-2507",
        "qwen3-235b-a22b",
        "qwen3-32b",
        "qwen3-30b-a3b",
        "qwen3-14b",
        "qwen3-8b",
        "qwen3-4b",
        "qwen3-1.7b",
        "qwen3-0.6b",
        "qwen2.5-14b-instruct-1m",
        "qwen2.5-7b-instruct-1m",
        "qwen2.5-72b-instruct",
        "qwen2.5-32b-instruct",
        "qwen2.5-14b-instruct",
        "qwen2.5-7b-instruct",
        "qwen2.5-3b-instruct",
        "qwen2.5-1.5b-instruct",
        "qwen2.5-0.5b-instruct",
    ),
    f"{_MODEL_STUDIO}; images and video: Model Studio, Visual understanding (unified multimodal"
    f" qwen3.5-plus), 2026-04": ("qwen3.5-plus",),
    "Model Studio, Long context (Qwen-Long), updated 2025-11-14: 10M-token context, file ids in"
    " system messages; max output: Model Studio model list (8,192; 6,000 on older copies)": (
        "qwen-long",
    ),
    f"Model Studio, Visual understanding (Qwen-VL), updated 2025-12-15; Partial mode (thinking"
    f" switch of qwen3-vl), updated 2026-03-15; {_LIMITS}": (
        "qwen-vl-max",
        "qwen-vl-plus",
        "qwen3-vl-plus",
        "qwen3-vl-flash",
    ),
    f"Model Studio, Qwen-Omni, updated 2026-03-31 (streaming only; text, image, audio, video in;"
    f" text and speech out); {_LIMITS}": ("qwen3-omni-flash", "qwen-omni-turbo", "qwen2.5-omni-7b"),
    f"Model Studio, Qwen-MT (OpenAI compatible API reference), {_READ}; {_LIMITS}": (
        "qwen-mt-plus",
        "qwen-mt-turbo",
        "qwen-mt-flash",
        "qwen-mt-lite",
    ),
    f"api-docs/000 (OpenSearch LLM service) and 002 (knowledge-llm), {_READ}": (
        "ops-qwen-turbo",
        "opensearch-llama2-13b",
        "opensearch-falcon-7b",
    ),
    f"api-docs/001 (AI gateway sample request), {_READ}": ("gpt-3.5-turbo",),
}
#: Where each row of ``PROFILES`` comes from, and when it was read.
PROFILE_SOURCES: dict[str, str] = {
    name: source for source, names in _SOURCES_BY_GROUP.items() for name in names
}

# Region suffixes (Model Studio's "US" models) that do not change what a model can do.
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
