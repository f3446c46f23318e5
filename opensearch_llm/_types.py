"""Typed names for the dicts that cross the public API."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

#: A ``chat.completion`` dict (OpenAI shape, gateway envelope removed) plus ``request_id``.
ChatCompletion = dict[str, Any]
#: A ``chat.completion.chunk`` dict with normalised tool-call fragments.
ChatCompletionChunk = dict[str, Any]
#: A wire message: ``{"role", "content", "name"?, "tool_calls"?, "tool_call_id"?, "partial"?}``.
Message = dict[str, Any]

ToolChoice = Literal["auto", "none", "required"] | dict[str, Any]


class AudioOutput(TypedDict, total=False):
    """``audio``: the voice and format of a spoken answer (Qwen-Omni)."""

    voice: str
    format: Literal["wav"]


class SearchOptions(TypedDict, total=False):
    """``search_options``: how the model searches the web (with ``enable_search=True``)."""

    forced_search: bool
    search_strategy: Literal["turbo", "max", "agent", "agent_max"]
    enable_source: bool
    enable_citation: bool
    citation_format: Literal["[<number>]", "[ref_<number>]"]
    enable_search_extension: bool
    prepend_search_result: bool
    freshness: int
    assigned_site_list: list[str]
    intention_options: dict[str, Any]


class TranslationPair(TypedDict):
    """One term or translation-memory pair of ``translation_options``."""

    source: str
    target: str


class TranslationOptions(TypedDict, total=False):
    """``translation_options`` of the Qwen-MT models; ``target_lang`` is required."""

    source_lang: str
    target_lang: str
    terms: list[TranslationPair]
    tm_list: list[TranslationPair]
    domains: str


class ChatParams(TypedDict, total=False):
    """Every documented chat parameter; what is left out (or None) is not sent."""

    max_tokens: int | None
    max_completion_tokens: int | None
    temperature: float | None
    top_p: float | None
    presence_penalty: float | None
    frequency_penalty: float | None
    stop: str | list[str] | None
    n: int | None
    seed: int | None
    user: str | None
    tools: list[dict[str, Any]] | None
    tool_choice: ToolChoice | None
    parallel_tool_calls: bool | None
    response_format: dict[str, Any] | None
    stream_options: dict[str, Any] | None
    logprobs: bool | None
    top_logprobs: int | None
    enable_thinking: bool | None
    thinking_budget: int | None
    enable_search: bool | None
    top_k: int | None
    repetition_penalty: float | None
    #: Qwen-Omni: ``["text"]`` or ``["text", "audio"]`` (then ``audio`` says the voice).
    modalities: list[Literal["text", "audio"]] | None
    audio: AudioOutput | None
    #: With ``enable_search=True``.
    search_options: SearchOptions | None
    #: Qwen-MT models (required there).
    translation_options: TranslationOptions | None
    #: Qwen-VL: raise the per-image token limit.
    vl_high_resolution_images: bool | None
    #: The built-in Python interpreter; needs a thinking model (the call is streamed).
    enable_code_interpreter: bool | None
    #: Stream deltas (``True``); cumulative chunks (``False``) are refused: deltas are merged.
    incremental_output: bool | None
    #: Merged into the JSON body: for fields this package does not name.
    extra_body: dict[str, Any] | None
    #: Sent as HTTP headers with this request only.
    extra_headers: dict[str, str] | None
