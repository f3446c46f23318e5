"""The Qwen surface through ``ChatOpenSearchLLM``: every content-block form, spoken answers,
context cache, prefix mode, Qwen extras and token counts.

Conversions are tested both ways without I/O; then each feature against the emulator (in
process, real HTTP through httpx's transport), sync and async.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_opensearch_llm import ChatOpenSearchLLM
from langchain_opensearch_llm._convert import (
    StreamConverter,
    ai_message_from_wire,
    message_to_wire,
    messages_to_wire,
    profile_to_langchain,
    usage_to_metadata,
)
from opensearch_llm import RequestValidationError, get_profile
from opensearch_llm.emulator import Emulator
from tests.langchain._helpers import MODES, invoke, merge, stream

LLMFactory = Callable[..., ChatOpenSearchLLM]
MARK = {"type": "ephemeral"}
B64 = base64.b64encode(b"RIFF....WAVE").decode()
SPEECH = {"modalities": ["text", "audio"], "audio": {"voice": "Cherry", "format": "wav"}}


def parts(*blocks: Any) -> Any:
    return message_to_wire(HumanMessage([*blocks, {"type": "text", "text": "?"}]))["content"][:-1]


def sent(emulator: Emulator, position: int = -1) -> dict[str, Any]:
    body = emulator.requests[position].json
    assert isinstance(body, dict)
    return body


# --------------------------------------------------------------------------- blocks → wire parts


@pytest.mark.parametrize(
    ("block", "part"),
    [
        # v1 standard blocks
        (
            {"type": "image", "url": "https://x/a.png"},
            {"type": "image_url", "image_url": {"url": "https://x/a.png"}},
        ),
        (
            {"type": "image", "base64": B64, "mime_type": "image/png"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{B64}"}},
        ),
        (
            {"type": "audio", "url": "https://x/a.mp3", "mime_type": "audio/mpeg"},
            {"type": "input_audio", "input_audio": {"data": "https://x/a.mp3", "format": "mp3"}},
        ),
        (
            {"type": "audio", "base64": B64, "mime_type": "audio/wav"},
            {
                "type": "input_audio",
                "input_audio": {"data": f"data:;base64,{B64}", "format": "wav"},
            },
        ),
        (
            {"type": "video", "url": "https://x/v.mp4"},
            {"type": "video_url", "video_url": {"url": "https://x/v.mp4"}},
        ),
        (
            {"type": "video", "base64": B64, "mime_type": "video/mp4", "extras": {"fps": 2}},
            {"type": "video_url", "video_url": {"url": f"data:video/mp4;base64,{B64}"}, "fps": 2},
        ),
        (
            {"type": "video", "video": ["https://x/1.jpg", "https://x/2.jpg"]},
            {"type": "video", "video": ["https://x/1.jpg", "https://x/2.jpg"]},
        ),
        (
            {"type": "file", "file_id": "file-fe-1"},
            {"type": "file", "file": {"file_id": "file-fe-1"}},
        ),
        (
            {"type": "file", "url": "fileid://file-fe-2"},
            {"type": "file", "file": {"file_id": "file-fe-2"}},
        ),
        (
            {
                "type": "file",
                "base64": base64.b64encode(b"notes").decode(),
                "mime_type": "text/plain",
            },
            {"type": "text", "text": "notes"},
        ),
        (
            {"type": "text-plain", "text": "plain", "mime_type": "text/plain"},
            {"type": "text", "text": "plain"},
        ),
        # v0 blocks
        (
            {"type": "image", "source_type": "url", "url": "https://x/b.png"},
            {"type": "image_url", "image_url": {"url": "https://x/b.png"}},
        ),
        (
            {"type": "audio", "source_type": "base64", "data": B64, "mime_type": "audio/mp3"},
            {
                "type": "input_audio",
                "input_audio": {"data": f"data:;base64,{B64}", "format": "mp3"},
            },
        ),
        (
            {"type": "file", "source_type": "id", "id": "file-fe-3"},
            {"type": "file", "file": {"file_id": "file-fe-3"}},
        ),
        (
            {"type": "file", "source_type": "text", "text": "inline"},
            {"type": "text", "text": "inline"},
        ),
        # OpenAI parts
        (
            {"type": "input_audio", "input_audio": {"data": B64, "format": "wav"}},
            {
                "type": "input_audio",
                "input_audio": {"data": f"data:;base64,{B64}", "format": "wav"},
            },
        ),
        (
            {"type": "file", "file": {"file_id": "file-fe-4"}},
            {"type": "file", "file": {"file_id": "file-fe-4"}},
        ),
        (
            {"type": "video_url", "video_url": {"url": "https://x/w.mp4"}, "fps": 1},
            {"type": "video_url", "video_url": {"url": "https://x/w.mp4"}, "fps": 1},
        ),
    ],
)
def test_every_block_form_becomes_the_services_part(
    block: dict[str, Any], part: dict[str, Any]
) -> None:
    assert parts(block) == [part]


@pytest.mark.parametrize(
    ("block", "says"),
    [
        ({"type": "image", "file_id": "file-1"}, "'url' or 'base64'"),
        ({"type": "video", "source_type": "id", "id": "file-1"}, "'url' or 'base64'"),
        ({"type": "file", "base64": "JVBERi0=", "mime_type": "application/pdf"}, "qwen-long"),
        ({"type": "file", "url": "https://x/report.pdf"}, "qwen-long"),
        (
            {
                "type": "file",
                "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "r.pdf"},
            },
            "file-extract",
        ),
        ({"type": "image"}, "'url' or 'base64'"),
    ],
)
def test_what_the_service_cannot_take_is_refused_saying_what_it_takes(
    block: dict[str, Any], says: str
) -> None:
    with pytest.raises(RequestValidationError, match=says):
        parts(block)


def test_file_ids_become_a_fileid_system_message() -> None:
    wire = messages_to_wire(
        [
            SystemMessage("Be brief."),
            HumanMessage(
                [{"type": "file", "file_id": "file-fe-1"}, {"type": "text", "text": "Sum up"}]
            ),
        ]
    )
    assert wire == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "fileid://file-fe-1"},
        {"role": "user", "content": "Sum up"},
    ]


def test_media_in_a_system_message_is_refused() -> None:
    with pytest.raises(RequestValidationError, match="go in a user message"):
        message_to_wire(SystemMessage([{"type": "image", "url": "https://x/a.png"}]))


# --------------------------------------------------------------------------- cache markers


@pytest.mark.parametrize(
    "message",
    [
        SystemMessage([{"type": "text", "text": "long", "cache_control": MARK}]),
        HumanMessage([{"type": "text", "text": "long", "cache_control": MARK}]),
        HumanMessage([{"type": "text", "text": "long", "extras": {"cache_control": MARK}}]),
        AIMessage([{"type": "text", "text": "long", "cache_control": MARK}]),
        ToolMessage([{"type": "text", "text": "long", "cache_control": MARK}], tool_call_id="c"),
    ],
)
def test_cache_markers_survive_every_role_even_on_a_single_block(message: Any) -> None:
    assert message_to_wire(message)["content"] == [
        {"type": "text", "text": "long", "cache_control": MARK}
    ]


def test_cache_creation_and_cached_tokens_reach_usage_metadata() -> None:
    usage = usage_to_metadata(
        {
            "prompt_tokens": 1200,
            "completion_tokens": 3,
            "prompt_tokens_details": {"cached_tokens": 100, "cache_creation_input_tokens": 1000},
        }
    )
    assert usage is not None
    assert usage["input_token_details"] == {"cache_read": 100, "cache_creation": 1000}


# --------------------------------------------------------------------------- partial mode


def test_a_partial_ai_message_is_sent_as_a_prefix() -> None:
    wire = message_to_wire(AIMessage("def f(", additional_kwargs={"partial": True}))
    assert wire == {"role": "assistant", "content": "def f(", "partial": True}
    assert "partial" not in message_to_wire(AIMessage("done"))


# --------------------------------------------------------------------------- spoken answers


def test_a_spoken_answer_is_a_text_block_and_an_audio_block() -> None:
    message = ai_message_from_wire(
        {
            "role": "assistant",
            "content": "Hi",
            "audio": {"data": B64, "id": "a1", "transcript": "Hi"},
        },
        {},
    )
    assert message.content == [
        {"type": "text", "text": "Hi"},
        {
            "type": "audio",
            "base64": B64,
            "mime_type": "audio/wav",
            "id": "a1",
            "extras": {"transcript": "Hi"},
        },
    ]
    assert message.text == "Hi"


def test_streamed_audio_is_one_audio_block_after_chunk_addition() -> None:
    converter = StreamConverter("audio/wav")
    deltas = [
        {"content": "Hel"},
        {"audio": {"data": "AAAA", "id": "a1", "expires_at": 9}},
        {"content": "lo"},
        {"audio": {"data": "BBBB", "id": "a1", "expires_at": 9}},
    ]
    chunks = []
    for delta in deltas:
        generation = converter.convert({"choices": [{"index": 0, "delta": delta}]})
        assert generation is not None
        chunks.append(generation.message)
    closing = converter.closing({"choices": [{"index": 0, "finish_reason": "stop"}]})
    full = merge([*chunks, closing.message])
    assert isinstance(full, AIMessageChunk)
    assert full.text == "Hello"
    audio = [
        block for block in full.content if isinstance(block, dict) and block["type"] == "audio"
    ]
    assert audio == [
        {"type": "audio", "base64": "AAAABBBB", "mime_type": "audio/wav", "id": "a1", "index": 1}
    ]


def test_without_audio_a_stream_stays_plain_text() -> None:
    generation = StreamConverter().convert({"choices": [{"index": 0, "delta": {"content": "Hi"}}]})
    assert generation is not None and generation.message.content == "Hi"


def test_profiles_say_which_media_a_model_takes() -> None:
    plus35 = profile_to_langchain(get_profile("qwen3.5-plus"))
    assert (plus35["image_inputs"], plus35["video_inputs"], plus35["audio_inputs"]) == (
        True,
        True,
        False,
    )
    omni = profile_to_langchain(get_profile("qwen3-omni-flash"))
    assert omni["audio_inputs"] and omni["audio_outputs"]
    plus = profile_to_langchain(get_profile("qwen-plus"))
    assert not (plus["image_inputs"] or plus["video_inputs"] or plus["audio_outputs"])


# --------------------------------------------------------------------------- against the emulator


@MODES
async def test_images_and_video_reach_qwen3_5_plus(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    message = HumanMessage(
        [
            {"type": "image", "url": "https://x/a.png"},
            {"type": "video", "url": "https://x/v.mp4"},
            {"type": "text", "text": "What happens here?"},
        ]
    )
    reply = await invoke(make_llm(model="qwen3.5-plus"), [message], mode)
    assert reply.content.endswith("What happens here?")
    assert [part["type"] for part in sent(emulator)["messages"][0]["content"]] == [
        "image_url",
        "video_url",
        "text",
    ]


@MODES
async def test_audio_for_a_text_model_is_refused_before_sending(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    message = HumanMessage(
        [{"type": "audio", "url": "https://x/a.mp3"}, {"type": "text", "text": "?"}]
    )
    with pytest.raises(RequestValidationError, match="qwen3-omni-flash"):
        await invoke(make_llm(model="qwen-plus"), [message], mode)
    assert emulator.request_count == 0


@MODES
async def test_a_spoken_answer_arrives_whole_invoked(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    reply = await invoke(make_llm(model="qwen3-omni-flash", **SPEECH), "Say hello", mode)
    text, audio = reply.content
    assert text["text"] == "You said: Say hello"
    assert base64.b64decode(audio["base64"]).decode() == text["text"]
    assert sent(emulator)["modalities"] == ["text", "audio"]


@MODES
async def test_a_spoken_answer_arrives_whole_streamed(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    chunks = await stream(make_llm(model="qwen3-omni-flash", **SPEECH), "Say hello again", mode)
    full = merge(chunks)
    audio = [
        block for block in full.content if isinstance(block, dict) and block["type"] == "audio"
    ]
    assert len(audio) == 1 and audio[0]["mime_type"] == "audio/wav"
    assert base64.b64decode(audio[0]["base64"]).decode() == full.text == "You said: Say hello again"


@MODES
async def test_cache_creation_then_cached_tokens_in_usage_metadata(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    document = "word " * 1100
    messages = [
        SystemMessage([{"type": "text", "text": document, "cache_control": MARK}]),
        HumanMessage("Summarise"),
    ]
    llm = make_llm()
    first = await invoke(llm, messages, mode)
    second = merge(await stream(llm, messages, mode))
    assert first.usage_metadata["input_token_details"]["cache_creation"] == 1100
    assert second.usage_metadata is not None
    assert second.usage_metadata["input_token_details"] == {"cache_read": 1100}
    assert sent(emulator)["messages"][0]["content"][0]["cache_control"] == MARK


@MODES
async def test_partial_mode_from_an_ai_message(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    prefix = AIMessage("def fibonacci(n):", additional_kwargs={"partial": True})
    await invoke(make_llm(model="qwen3.5-plus"), [HumanMessage("Write it"), prefix], mode)
    body = sent(emulator)
    assert body["messages"][-1] == {
        "role": "assistant",
        "content": "def fibonacci(n):",
        "partial": True,
    }
    assert body["enable_thinking"] is False  # prefix mode works only without thinking


@MODES
async def test_qwen_long_reads_a_file_by_id(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    message = HumanMessage(
        [{"type": "file", "file_id": "file-fe-9"}, {"type": "text", "text": "Sum up"}]
    )
    await invoke(make_llm(model="qwen-long"), [SystemMessage("Be brief."), message], mode)
    assert sent(emulator)["messages"][:2] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "fileid://file-fe-9"},
    ]


@MODES
async def test_extras_are_fields_and_call_keywords(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    options = {"forced_search": True, "search_strategy": "max"}
    llm = make_llm(enable_search=True, search_options=options)
    await invoke(llm, "News?", mode, vl_high_resolution_images=None)
    assert sent(emulator)["search_options"] == options
    translator = make_llm(model="qwen-mt-turbo", translation_options={"target_lang": "English"})
    await invoke(translator, "Bonjour", mode)
    assert sent(emulator)["translation_options"] == {"target_lang": "English"}
    await invoke(make_llm(model="qwen-vl-max"), "Hi", mode, vl_high_resolution_images=True)
    assert sent(emulator)["vl_high_resolution_images"] is True


def test_bad_extras_fail_at_construction() -> None:
    # pydantic wraps the core's RequestValidationError; both are ValueErrors.
    with pytest.raises(ValueError, match="search_strategy"):
        ChatOpenSearchLLM(api_key="sk", search_options={"search_strategy": "fast"})
    with pytest.raises(ValueError, match="modalities"):
        ChatOpenSearchLLM(api_key="sk", modalities=["audio"])


# --------------------------------------------------------------------------- tokens


@MODES
async def test_token_counts_match_the_emulators_prompt_tokens_within_the_framing(
    make_llm: LLMFactory, mode: str
) -> None:
    llm = make_llm()
    messages = [SystemMessage("you are a careful reader"), HumanMessage("tell me about the sea")]
    reply = await invoke(llm, messages, mode)
    framing = 2 * 5 + 3  # documented: 5 per message, 3 for the reply's opening
    assert (
        llm.get_num_tokens_from_messages(messages) == reply.usage_metadata["input_tokens"] + framing
    )
    assert llm.get_num_tokens("tell me about the sea") == 5
    assert (
        llm.get_token_ids("sea") == llm.get_token_ids("sea") and len(llm.get_token_ids("sea")) == 1
    )


def test_a_spoken_answer_goes_back_in_history_as_its_text() -> None:
    answer = AIMessage(
        [{"type": "text", "text": "Hi"}, {"type": "audio", "base64": B64, "index": 1}]
    )
    assert message_to_wire(answer) == {"role": "assistant", "content": "Hi"}
