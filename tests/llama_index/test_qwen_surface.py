"""The Qwen surface through ``OpenSearchLLM``: image, audio, video and document blocks, spoken
answers, cache points, prefix mode, Qwen extras and the tokenizer.

Conversions are tested both ways without I/O; then each feature against the emulator (in
process, real HTTP through httpx's transport), through the sync and the async methods.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from li_support import Calls
from llama_index.core import Settings
from llama_index.core.base.llms.types import (
    AudioBlock,
    CacheControl,
    CachePoint,
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    TextBlock,
    VideoBlock,
)

from llama_index_opensearch_llm import OpenSearchLLM
from llama_index_opensearch_llm._convert import (
    ChatStreamState,
    chat_response,
    to_wire_message,
    to_wire_messages,
)
from opensearch_llm import RequestValidationError
from opensearch_llm.emulator import Emulator

COMPATIBLE = "http://emulator.local/compatible-mode/v1"
MARK = {"type": "ephemeral"}
RAW = b"RIFF....WAVEfmt "
B64 = base64.b64encode(RAW).decode()
SPEECH = {"modalities": ["text", "audio"], "audio": {"voice": "Cherry", "format": "wav"}}

MakeLLM = Callable[..., OpenSearchLLM]


@pytest.fixture
def emu() -> Emulator:
    return Emulator()


@pytest.fixture
def make_llm(emu: Emulator) -> MakeLLM:
    def make(**fields: Any) -> OpenSearchLLM:
        return OpenSearchLLM(
            api_key="sk-test",
            base_url=COMPATIBLE,
            http_client=httpx.Client(transport=emu.transport()),
            async_http_client=httpx.AsyncClient(transport=emu.async_transport()),
            **fields,
        )

    return make


def sent(emu: Emulator) -> dict[str, Any]:
    body = emu.requests[-1].json
    assert isinstance(body, dict)
    return body


def user(*blocks: Any) -> ChatMessage:
    return ChatMessage(role="user", blocks=[*blocks, TextBlock(text="What is it?")])


def first_part(*blocks: Any) -> Any:
    return to_wire_message(user(*blocks))["content"][0]


# --------------------------------------------------------------------------- blocks → wire parts


def test_audio_blocks_by_url_and_by_bytes() -> None:
    assert first_part(AudioBlock(url="https://x/a.mp3", format="mp3")) == {
        "type": "input_audio",
        "input_audio": {"data": "https://x/a.mp3", "format": "mp3"},
    }
    assert first_part(AudioBlock(audio=RAW, format="wav")) == {
        "type": "input_audio",
        "input_audio": {"data": f"data:;base64,{B64}", "format": "wav"},
    }


def test_video_blocks_keep_their_frame_rate() -> None:
    assert first_part(VideoBlock(url="https://x/v.mp4", fps=2)) == {
        "type": "video_url",
        "video_url": {"url": "https://x/v.mp4"},
        "fps": 2,
    }
    part = first_part(VideoBlock(video=b"\x00\x00\x00\x18ftypmp42", video_mimetype="video/mp4"))
    assert part["video_url"]["url"].startswith("data:video/mp4;base64,")


def test_document_blocks_by_file_id_or_as_text() -> None:
    wire = to_wire_messages([user(DocumentBlock(url="fileid://file-fe-1"))])
    assert wire == [
        {"role": "system", "content": "fileid://file-fe-1"},
        {"role": "user", "content": "What is it?"},
    ]
    text = DocumentBlock(data=b"meeting notes", document_mimetype="text/plain")
    assert to_wire_message(user(text))["content"] == "meeting notes\nWhat is it?"


def test_a_pdf_document_is_refused_saying_how_to_send_it() -> None:
    with pytest.raises(RequestValidationError, match="DocumentBlock") as caught:
        to_wire_message(user(DocumentBlock(data=b"%PDF-1.4", title="x.pdf")))
    assert "fileid://" in str(caught.value) and "qwen-long" in str(caught.value)


def test_a_cache_point_marks_the_block_before_it_in_every_role() -> None:
    point = CachePoint(cache_control=CacheControl(type="ephemeral"))
    for role in ("system", "user", "assistant", "tool"):
        message = ChatMessage(
            role=role,
            blocks=[TextBlock(text="long"), point, TextBlock(text="rest")],
            additional_kwargs={"tool_call_id": "c"},
        )
        assert to_wire_message(message)["content"] == [
            {"type": "text", "text": "long", "cache_control": MARK},
            {"type": "text", "text": "rest"},
        ], role


def test_a_tool_results_image_moves_to_a_user_message_after_it() -> None:
    tool = ChatMessage(
        role="tool",
        blocks=[TextBlock(text="chart"), ImageBlock(url="https://x/c.png")],
        additional_kwargs={"tool_call_id": "c1"},
    )
    wire = to_wire_messages([ChatMessage(role="user", content="Draw"), tool])
    assert wire[1] == {"role": "tool", "content": "chart", "tool_call_id": "c1"}
    assert wire[2] == {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": "https://x/c.png"}}],
    }


def test_a_partial_assistant_message_is_sent_as_a_prefix() -> None:
    message = ChatMessage(role="assistant", content="def f(", additional_kwargs={"partial": True})
    assert to_wire_message(message) == {"role": "assistant", "content": "def f(", "partial": True}


# --------------------------------------------------------------------------- replies → LlamaIndex


def test_a_spoken_answer_becomes_an_audio_block() -> None:
    completion = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hi",
                    "audio": {"data": B64, "id": "a1"},
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 1,
            "completion_tokens": 1,
            "prompt_tokens_details": {"cache_creation_input_tokens": 7, "cached_tokens": 0},
        },
    }
    response = chat_response(completion, "wav")
    text, audio = response.message.blocks
    assert isinstance(text, TextBlock) and text.text == "Hi"
    assert isinstance(audio, AudioBlock) and audio.format == "wav"
    assert audio.resolve_audio().read() == RAW
    assert response.additional_kwargs["cache_creation_tokens"] == 7
    assert response.additional_kwargs["cached_tokens"] == 0


def test_streamed_audio_pieces_build_one_growing_audio_block() -> None:
    state = ChatStreamState("wav")
    pieces = [B64[:8], B64[8:]]
    responses = []
    for piece in pieces:
        chunk = {"choices": [{"index": 0, "delta": {"audio": {"data": piece}}}]}
        responses.append(state.add(chunk, lambda: {"choices": []}))
    assert [r.additional_kwargs["audio_delta"] for r in responses] == pieces
    last = responses[-1].message.blocks[-1]
    assert isinstance(last, AudioBlock) and last.resolve_audio().read() == RAW


# --------------------------------------------------------------------------- against the emulator


def test_images_and_video_reach_qwen3_5_plus(
    calls: Calls, make_llm: MakeLLM, emu: Emulator
) -> None:
    message = user(ImageBlock(url="https://x/a.png"), VideoBlock(url="https://x/v.mp4"))
    response = calls.chat(make_llm(model="qwen3.5-plus"), [message])
    assert (response.message.content or "").endswith("What is it?")
    assert [part["type"] for part in sent(emu)["messages"][0]["content"]] == [
        "image_url",
        "video_url",
        "text",
    ]


def test_audio_for_a_text_model_is_refused_before_sending(
    calls: Calls, make_llm: MakeLLM, emu: Emulator
) -> None:
    with pytest.raises(RequestValidationError, match="qwen3-omni-flash"):
        calls.chat(make_llm(model="qwen-plus"), [user(AudioBlock(url="https://x/a.mp3"))])
    assert emu.request_count == 0


def test_a_spoken_answer_arrives_whole(calls: Calls, make_llm: MakeLLM) -> None:
    llm = make_llm(model="qwen3-omni-flash", **SPEECH)
    for response in (
        calls.chat(llm, [ChatMessage(role="user", content="Say hello")]),
        calls.stream_chat(llm, [ChatMessage(role="user", content="Say hello")])[-1],
    ):
        text, audio = response.message.blocks
        assert isinstance(audio, AudioBlock) and audio.format == "wav"
        assert audio.resolve_audio().read().decode() == text.text == "You said: Say hello"  # type: ignore[union-attr]


def test_cache_creation_then_cached_tokens(calls: Calls, make_llm: MakeLLM, emu: Emulator) -> None:
    point = CachePoint(cache_control=CacheControl(type="ephemeral"))
    messages = [
        ChatMessage(role="system", blocks=[TextBlock(text="word " * 1100), point]),
        ChatMessage(role="user", content="Summarise"),
    ]
    llm = make_llm()
    first = calls.chat(llm, messages)
    second = calls.stream_chat(llm, messages)[-1]
    assert first.additional_kwargs["cache_creation_tokens"] == 1100
    assert second.additional_kwargs["cached_tokens"] == 1100
    assert "cache_creation_tokens" not in second.additional_kwargs
    assert sent(emu)["messages"][0]["content"][0]["cache_control"] == MARK


def test_partial_mode_from_additional_kwargs(
    calls: Calls, make_llm: MakeLLM, emu: Emulator
) -> None:
    prefix = ChatMessage(
        role="assistant", content="def fib(n):", additional_kwargs={"partial": True}
    )
    calls.chat(
        make_llm(model="qwen3.5-plus"), [ChatMessage(role="user", content="Write it"), prefix]
    )
    assert sent(emu)["messages"][-1] == {
        "role": "assistant",
        "content": "def fib(n):",
        "partial": True,
    }
    assert sent(emu)["enable_thinking"] is False


def test_qwen_long_reads_a_document_by_id(calls: Calls, make_llm: MakeLLM, emu: Emulator) -> None:
    message = user(DocumentBlock(url="fileid://file-fe-9"))
    calls.chat(
        make_llm(model="qwen-long"), [ChatMessage(role="system", content="Be brief."), message]
    )
    assert sent(emu)["messages"][1] == {"role": "system", "content": "fileid://file-fe-9"}


def test_extras_as_fields_and_call_keywords(calls: Calls, make_llm: MakeLLM, emu: Emulator) -> None:
    options = {"search_strategy": "agent", "enable_source": True}
    calls.chat(
        make_llm(enable_search=True, search_options=options),
        [ChatMessage(role="user", content="News?")],
    )
    assert sent(emu)["search_options"] == options
    translator = make_llm(model="qwen-mt-lite")
    calls.chat(
        translator,
        [ChatMessage(role="user", content="Hallo")],
        translation_options={"target_lang": "English"},
    )
    assert sent(emu)["translation_options"] == {"target_lang": "English"}
    with pytest.raises(ValueError, match="freshness"):
        make_llm(enable_search=True, search_options={"freshness": -1})


# --------------------------------------------------------------------------- tokens


def test_the_tokenizer_counts_like_the_emulator_within_the_framing(
    make_llm: MakeLLM, calls: Calls
) -> None:
    llm = make_llm()
    messages = [
        ChatMessage(role="system", content="you are kind"),
        ChatMessage(role="user", content="tell me a story"),
    ]
    response = calls.chat(llm, messages)
    assert llm.count_tokens(messages) == response.additional_kwargs["prompt_tokens"] + 2 * 5 + 3
    assert len(llm.tokenizer("tell me a story")) == 4


def test_settings_tokenizer_takes_the_qwen_tokenizer(make_llm: MakeLLM) -> None:
    previous = Settings._tokenizer
    try:
        Settings.tokenizer = make_llm(model="qwen3.5-plus").tokenizer
        assert Settings.tokenizer("hello world") == make_llm(model="qwen3.5-plus").tokenizer(
            "hello world"
        )
        assert len(Settings.tokenizer("hello world")) == 2
    finally:
        Settings._tokenizer = previous


def test_a_spoken_answer_goes_back_in_history_as_its_text() -> None:
    answer = ChatMessage(
        role="assistant", blocks=[TextBlock(text="Hi"), AudioBlock(audio=RAW, format="wav")]
    )
    assert to_wire_message(answer) == {"role": "assistant", "content": "Hi"}
