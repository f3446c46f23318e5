"""The Qwen surface in the core: content parts, files, cache markers, prefix mode, extras, speech,
profiles and token counts. Pure: no sockets."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from opensearch_llm import RequestValidationError, get_profile
from opensearch_llm._accumulate import aggregate_chunks
from opensearch_llm._adapters import service_messages, usage_counts
from opensearch_llm._capabilities import models_with
from opensearch_llm._chat_messages import MEDIA_FOLLOW, merge_system_messages
from opensearch_llm._chat_wire import build_chat_request
from opensearch_llm._profiles import PROFILE_SOURCES, PROFILES
from opensearch_llm._tokens import (
    MESSAGE_OVERHEAD,
    REPLY_OVERHEAD,
    count_message_tokens,
    count_text_tokens,
    qwen_encoder,
)
from opensearch_llm._types import ChatParams
from opensearch_llm._validate import CHAT_PARAMS

USER = [{"role": "user", "content": "Hi"}]
IMAGE = {"type": "image_url", "image_url": {"url": "https://x/a.png"}}
AUDIO = {"type": "input_audio", "input_audio": {"data": "https://x/a.mp3", "format": "mp3"}}
VIDEO = {"type": "video_url", "video_url": {"url": "https://x/v.mp4"}}
FRAMES = {"type": "video", "video": ["https://x/1.jpg", "https://x/2.jpg"]}
MARK = {"type": "ephemeral"}
CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"


def build(model: str = "qwen-plus", messages: Any = USER, stream: bool = False, **params: Any):
    return build_chat_request(model, copy.deepcopy(messages), params, stream=stream)


def user(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [*parts, {"type": "text", "text": "What is it?"}]}]


# --------------------------------------------------------------------------- profiles


def test_every_profile_row_names_its_source_and_date() -> None:
    assert set(PROFILE_SOURCES) == set(PROFILES)
    assert all("20" in source for source in PROFILE_SOURCES.values())  # a year: when read


def test_qwen3_5_plus_and_its_snapshots_take_images_and_video() -> None:
    for name in ("qwen3.5-plus", "qwen3.5-plus-2026-02-15"):
        profile = get_profile(name)
        assert profile.vision and profile.video and not profile.audio_input


def test_qwen_long_reads_files_in_a_10m_context() -> None:
    profile = get_profile("qwen-long-latest")
    assert profile.known and profile.file_ids and profile.context_window == 10_000_000


def test_omni_models_take_every_medium_and_speak() -> None:
    profile = get_profile("qwen3-omni-flash-2025-12-01")
    assert (profile.vision, profile.video, profile.audio_input, profile.audio_output) == (
        True,
        True,
        True,
        True,
    )
    assert profile.stream_only


# --------------------------------------------------------------------------- media parts


@pytest.mark.parametrize(
    ("model", "part"),
    [
        ("qwen-vl-max", IMAGE),
        ("qwen3.5-plus", IMAGE),
        ("qwen3.5-plus", VIDEO),
        ("qwen3-vl-plus", FRAMES),
        ("qwen3-omni-flash", AUDIO),
    ],
)
def test_media_parts_go_to_models_that_take_them(model: str, part: dict[str, Any]) -> None:
    request = build(model, user(part), stream=True)
    assert request.payload["messages"][0]["content"][0] == part


@pytest.mark.parametrize(
    ("part", "what", "taker"),
    [
        (IMAGE, "images", "qwen-vl-max"),
        (AUDIO, "audio input", "qwen3-omni-flash"),
        (VIDEO, "video", "qwen3.5-plus"),
    ],
)
def test_media_for_a_model_that_cannot_take_them_is_refused_naming_who_can(
    part: dict[str, Any], what: str, taker: str
) -> None:
    with pytest.raises(RequestValidationError, match=what) as caught:
        build("qwen-plus", user(part))
    assert caught.value.field == "messages[0].content[0]"
    assert taker in str(caught.value) and "qwen-plus does not take" in str(caught.value)


def test_an_unknown_model_is_left_to_the_service() -> None:
    assert build("my-finetune", user(IMAGE)).payload["messages"][0]["content"][0] == IMAGE


@pytest.mark.parametrize(
    ("part", "field"),
    [
        ({"type": "image_url", "image_url": {}}, "image_url"),
        ({"type": "input_audio", "input_audio": {"format": "mp3"}}, "input_audio"),
        ({"type": "video", "video": []}, "video"),
        ({"type": "video_url", "video_url": {"url": " "}}, "video_url"),
        ({"type": "pdf"}, "type"),
    ],
)
def test_malformed_parts_are_refused_naming_the_field(part: dict[str, Any], field: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        build("qwen3.5-plus", user(part))
    assert caught.value.field == f"messages[0].content[0].{field}"


# --------------------------------------------------------------------------- cache markers


def test_cache_markers_are_sent_and_limited_to_four() -> None:
    marked = {"type": "text", "text": "doc", "cache_control": MARK}
    request = build(messages=[{"role": "system", "content": [marked]}, *USER])
    assert request.payload["messages"][0]["content"] == [marked]
    with pytest.raises(RequestValidationError, match="at most 4"):
        build(messages=[{"role": "user", "content": [marked] * 5}])
    with pytest.raises(RequestValidationError, match="ephemeral"):
        build(messages=[{"role": "user", "content": [{**marked, "cache_control": {"type": "x"}}]}])


def test_usage_counts_read_cache_creation_and_cached_tokens() -> None:
    created = usage_counts(
        {
            "prompt_tokens": 1200,
            "completion_tokens": 3,
            "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_input_tokens": 1100},
        }
    )
    assert created is not None
    assert (created["cached_tokens"], created["cache_creation_tokens"]) == (0, 1100)
    hit = usage_counts({"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4}})
    assert hit is not None and "cache_creation_tokens" not in hit


def test_merged_system_messages_keep_their_cache_markers() -> None:
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Long.", "cache_control": MARK}]},
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "Later rule."},
    ]
    assert merge_system_messages(messages)[0] == {
        "role": "system",
        "content": [
            {"type": "text", "text": "Long.", "cache_control": MARK},
            {"type": "text", "text": "\n\nLater rule."},
        ],
    }


# --------------------------------------------------------------------------- files and tools


def test_file_references_become_a_fileid_system_message_after_the_prompt() -> None:
    file_part = {"type": "file", "file": {"file_id": "file-fe-1"}}
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [file_part, {"type": "file", "file": {"file_id": "f2"}}]},
        {"role": "user", "content": [file_part, {"type": "text", "text": "Summarise"}]},
    ]
    assert service_messages(messages) == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "fileid://file-fe-1,fileid://f2"},
        {"role": "user", "content": "Summarise"},
    ]
    assert build("qwen-long", service_messages(messages)).payload["messages"][1]["content"]


def test_file_ids_are_refused_for_models_that_do_not_read_files() -> None:
    messages = [{"role": "system", "content": "fileid://file-fe-1"}, *USER]
    with pytest.raises(RequestValidationError, match="qwen-long"):
        build("qwen-plus", messages)


def test_a_fileid_system_message_only_in_the_leading_system_block() -> None:
    late = [
        *USER,
        {"role": "assistant", "content": "Hello"},
        {"role": "system", "content": "fileid://f"},
    ]
    with pytest.raises(RequestValidationError, match=r"messages\[2\].role"):
        build("qwen-long", late)


def test_media_of_tool_results_move_to_a_user_message_after_the_results() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "chart", "arguments": "{}"}}
    messages = [
        *USER,
        {"role": "assistant", "content": "", "tool_calls": [call, {**call, "id": "c2"}]},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "a"}, IMAGE]},
        {"role": "tool", "tool_call_id": "c2", "content": [IMAGE]},
        {"role": "user", "content": "Compare them"},
    ]
    lifted = service_messages(messages)
    assert lifted[2] == {"role": "tool", "tool_call_id": "c1", "content": "a"}
    assert lifted[3] == {"role": "tool", "tool_call_id": "c2", "content": MEDIA_FOLLOW}
    assert lifted[4] == {"role": "user", "content": [IMAGE, IMAGE]}
    assert lifted[5] == {"role": "user", "content": "Compare them"}
    assert build("qwen3-vl-plus", lifted, stream=True).payload["messages"] == lifted


# --------------------------------------------------------------------------- partial mode


def test_partial_prefix_switches_thinking_off_for_a_hybrid_model() -> None:
    prefix = {"role": "assistant", "content": "def f(", "partial": True}
    request = build("qwen3.5-plus", [*USER, prefix], stream=True)
    assert request.payload["messages"][-1] == prefix
    assert request.payload["enable_thinking"] is False


@pytest.mark.parametrize(
    ("model", "messages", "params"),
    [
        ("qwq-plus", [*USER, {"role": "assistant", "content": "x", "partial": True}], {}),
        (
            "qwen-plus",
            [*USER, {"role": "assistant", "content": "x", "partial": True}],
            {"enable_thinking": True},
        ),
        ("qwen-plus", [{"role": "assistant", "content": "x", "partial": True}, *USER], {}),
        ("qwen-plus", [*USER, {"role": "user", "content": "x", "partial": True}], {}),
    ],
)
def test_partial_is_refused_where_prefix_mode_cannot_work(
    model: str, messages: list[dict[str, Any]], params: dict[str, Any]
) -> None:
    with pytest.raises(RequestValidationError, match="partial"):
        build(model, messages, stream=True, **params)


# --------------------------------------------------------------------------- extras


def test_every_extra_is_a_named_typed_parameter() -> None:
    extras = {
        "modalities",
        "audio",
        "search_options",
        "translation_options",
        "vl_high_resolution_images",
        "enable_code_interpreter",
        "incremental_output",
    }
    assert extras <= set(CHAT_PARAMS) and extras <= set(ChatParams.__annotations__)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"modalities": ["audio"]}, "modalities"),
        ({"modalities": ["text", "text"]}, "modalities"),
        ({"audio": {"voice": "Cherry", "format": "mp3"}}, "audio.format"),
        (
            {"search_options": {"search_strategy": "fast"}, "enable_search": True},
            "search_options.search_strategy",
        ),
        (
            {"search_options": {"forced_search": "yes"}, "enable_search": True},
            "search_options.forced_search",
        ),
        ({"search_options": {"freshness": 0}, "enable_search": True}, "search_options.freshness"),
        ({"translation_options": {"source_lang": "auto"}}, "translation_options.target_lang"),
        (
            {"translation_options": {"target_lang": "English", "terms": [{"source": "a"}]}},
            "translation_options.terms",
        ),
        ({"vl_high_resolution_images": "yes"}, "vl_high_resolution_images"),
        ({"enable_code_interpreter": 1}, "enable_code_interpreter"),
        ({"incremental_output": False}, "incremental_output"),
    ],
)
def test_extras_are_range_checked(params: dict[str, Any], field: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        build(**params)
    assert caught.value.field == field


def test_search_options_need_enable_search_and_extra_body_can_carry_it() -> None:
    options = {"forced_search": True, "search_strategy": "max", "enable_source": True}
    with pytest.raises(RequestValidationError, match="enable_search"):
        build(search_options=options)
    payload = build(search_options=options, extra_body={"enable_search": True}).payload
    assert payload["search_options"] == options and payload["enable_search"] is True


def test_spoken_answers_need_a_speaking_model_and_a_voice() -> None:
    speech = {"modalities": ["text", "audio"], "audio": {"voice": "Cherry", "format": "wav"}}
    request = build("qwen3-omni-flash", **speech)
    assert request.payload["modalities"] == ["text", "audio"] and request.aggregate
    with pytest.raises(RequestValidationError, match="qwen3-omni-flash"):
        build("qwen-plus", **speech)
    with pytest.raises(RequestValidationError, match="voice"):
        build("qwen3-omni-flash", modalities=["text", "audio"])
    with pytest.raises(RequestValidationError, match="modalities"):
        build("qwen3-omni-flash", audio={"voice": "Cherry"})


def test_translation_options_are_required_by_and_only_for_translation_models() -> None:
    options = {"source_lang": "auto", "target_lang": "English", "domains": "IT"}
    assert (
        build("qwen-mt-flash", translation_options=options).payload["translation_options"]
        == options
    )
    with pytest.raises(RequestValidationError, match="required by the translation model"):
        build("qwen-mt-plus")
    with pytest.raises(RequestValidationError, match="qwen-mt-plus"):
        build("qwen-plus", translation_options=options)


def test_code_interpreter_turns_thinking_on_and_streams() -> None:
    request = build("qwen-plus", enable_code_interpreter=True)
    assert request.payload["enable_thinking"] is True and request.stream and request.aggregate
    with pytest.raises(RequestValidationError, match="enable_thinking=False"):
        build("qwen-plus", enable_code_interpreter=True, enable_thinking=False)
    with pytest.raises(RequestValidationError, match="never thinks"):
        build("qwen2.5-72b-instruct", enable_code_interpreter=True)


def test_vl_high_resolution_images_only_for_models_with_images_unless_in_extra_body() -> None:
    assert build("qwen-vl-max", vl_high_resolution_images=True).payload["vl_high_resolution_images"]
    with pytest.raises(RequestValidationError, match="qwen-vl-max"):
        build("qwen-plus", vl_high_resolution_images=True)
    extra = build("qwen-plus", extra_body={"vl_high_resolution_images": True})
    assert extra.payload["vl_high_resolution_images"] is True


def test_models_with_a_capability_come_from_the_profile_table() -> None:
    assert models_with("file_ids") == ("qwen-long",)
    assert set(models_with("audio_output")) == {
        "qwen3-omni-flash",
        "qwen-omni-turbo",
        "qwen2.5-omni-7b",
    }


# --------------------------------------------------------------------------- spoken answers


def test_streamed_audio_pieces_add_up_in_the_aggregate() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    completion = aggregate_chunks(
        [
            chunk({"content": "Hi"}),
            chunk({"audio": {"data": "AAAA", "id": "a1", "expires_at": 9}}),
            chunk({"audio": {"data": "BBBB", "id": "a1", "expires_at": 9, "transcript": "Hi"}}),
            chunk({}, "stop"),
        ]
    )
    assert completion["choices"][0]["message"]["audio"] == {
        "data": "AAAABBBB",
        "id": "a1",
        "expires_at": 9,
        "transcript": "Hi",
    }


# --------------------------------------------------------------------------- tokens


def test_token_counts_use_qwen_vocabularies() -> None:
    assert qwen_encoder("qwen-plus")("Who are you?") == qwen_encoder("qwen-max")("Who are you?")
    assert len(qwen_encoder("qwen-plus")("Who are you?")) == 4
    # Qwen3.5 has its own vocabulary: the same text, other ids.
    assert qwen_encoder("qwen3.5-plus")("Who are you?") != qwen_encoder("qwen-plus")("Who are you?")


def test_message_framing_is_five_per_message_and_three_for_the_reply() -> None:
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Hi"},
    ]
    text = count_text_tokens("You are helpful.") + count_text_tokens("Hi")
    assert count_message_tokens(messages) == text + 2 * MESSAGE_OVERHEAD + REPLY_OVERHEAD


def test_tool_calls_and_tools_are_counted() -> None:
    call = {
        "id": "c",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
    }
    plain = [{"role": "assistant", "content": ""}]
    with_call = [{"role": "assistant", "content": "", "tool_calls": [call]}]
    assert count_message_tokens(with_call) > count_message_tokens(plain)
    tool = {"type": "function", "function": {"name": "weather", "parameters": {}}}
    assert count_message_tokens(plain, tools=[tool]) > count_message_tokens(plain)


@pytest.mark.parametrize("name", ["compatible_chat", "compatible_stream_usage"])
def test_the_services_documented_prompt_tokens_lie_within_the_framing(name: str) -> None:
    """The documented samples: the service counts the text and part of the ChatML framing."""
    interaction = yaml.safe_load((CASSETTES / f"{name}.yaml").read_text(encoding="utf-8"))
    exchange = interaction["interactions"][0]
    request = json.loads(exchange["request"]["body"])
    answer = exchange["response"]["body"]["string"]
    frames = [line[5:] for line in answer.splitlines() if line.startswith("data:")]
    usage = [json.loads(frame)["usage"] for frame in frames if '"usage":{' in frame]
    prompt_tokens = (usage or [json.loads(answer)["usage"]])[-1]["prompt_tokens"]
    model, messages = request["model"], request["messages"]
    text = sum(count_text_tokens(message["content"], model) for message in messages)
    framed = count_message_tokens(messages, model)
    assert text < prompt_tokens <= framed
    assert framed - prompt_tokens <= 2  # within the framing: README, "Token counts"
