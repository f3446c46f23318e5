"""The emulator takes and checks the Qwen surface as the service does: media parts, file ids,
cache markers, prefix mode and the Qwen extras; it speaks and reports context-cache usage."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from emu_support import GATEWAY, KEY, Caller

from opensearch_llm import AsyncChatClient, ChatClient
from opensearch_llm.emulator import EmulatorServer

IMAGE = {"type": "image_url", "image_url": {"url": "https://x/a.png"}}
AUDIO = {"type": "input_audio", "input_audio": {"data": "data:;base64,AAAA", "format": "wav"}}
FRAMES = {"type": "video", "video": ["https://x/1.jpg", "https://x/2.jpg"]}
MARK = {"type": "ephemeral"}
SPEECH = {"modalities": ["text", "audio"], "audio": {"voice": "Cherry", "format": "wav"}}


def chat(model: str, *messages: Any, **params: Any) -> dict[str, Any]:
    return {"model": model, "messages": list(messages), **params}


def user(*parts: Any) -> dict[str, Any]:
    return {"role": "user", "content": [*parts, {"type": "text", "text": "what is it"}]}


HI = {"role": "user", "content": "hi"}
OFF = {"enable_thinking": False}  # qwen3.5-plus thinks by default, and then only streams
PREFIX = {"role": "assistant", "content": "def f(", "partial": True}

REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("image to a text model", chat("qwen-plus", user(IMAGE)), "messages[0].content[0]"),
    ("audio to a vision model", chat("qwen-vl-max", user(AUDIO)), "messages[0].content[0]"),
    ("unknown part", chat("qwen3.5-plus", user({"type": "pdf"}), **OFF), "messages[0].content[0]"),
    (
        "image without url",
        chat("qwen3.5-plus", user({"type": "image_url"}), **OFF),
        "messages[0].content[0]",
    ),
    (
        "empty frames",
        chat("qwen3.5-plus", user({"type": "video", "video": []}), **OFF),
        "messages[0].content[0]",
    ),
    (
        "bad cache marker",
        chat(
            "qwen-plus",
            {
                "role": "user",
                "content": [{"type": "text", "text": "x", "cache_control": {"type": "long"}}],
            },
        ),
        "messages[0].content[0]",
    ),
    (
        "five cache markers",
        chat(
            "qwen-plus",
            {"role": "user", "content": [{"type": "text", "text": "x", "cache_control": MARK}] * 5},
        ),
        "messages",
    ),
    (
        "file id to a text model",
        chat("qwen-plus", {"role": "system", "content": "fileid://file-fe-1"}, HI),
        "messages",
    ),
    ("partial while thinking", chat("qwen3.5-plus", HI, PREFIX, stream=True), "partial"),
    ("partial not last", chat("qwen-plus", PREFIX, HI), "partial"),
    ("speech from a text model", chat("qwen-plus", HI, **SPEECH), "modalities"),
    (
        "speech without a voice",
        chat("qwen3-omni-flash", HI, modalities=["text", "audio"], stream=True),
        "audio",
    ),
    (
        "speech in mp3",
        chat(
            "qwen3-omni-flash",
            HI,
            modalities=["text", "audio"],
            audio={"voice": "Cherry", "format": "mp3"},
            stream=True,
        ),
        "audio",
    ),
    (
        "bad modalities",
        chat("qwen3-omni-flash", HI, modalities=["video"], stream=True),
        "modalities",
    ),
    ("translation without options", chat("qwen-mt-plus", HI), "translation_options"),
    (
        "translation without target",
        chat("qwen-mt-plus", HI, translation_options={"source_lang": "auto"}),
        "translation_options",
    ),
    ("search options not an object", chat("qwen-plus", HI, search_options="max"), "search_options"),
    (
        "high resolution not a boolean",
        chat("qwen-vl-max", HI, vl_high_resolution_images="yes"),
        "vl_high_resolution_images",
    ),
    (
        "code interpreter without thinking",
        chat("qwen-plus", HI, enable_code_interpreter=True, stream=True),
        "enable_code_interpreter",
    ),
    (
        "code interpreter not streamed",
        chat("qwen-plus", HI, enable_code_interpreter=True, enable_thinking=True),
        "enable_thinking",  # thinking only streams
    ),
]


@pytest.mark.parametrize(
    ("body", "param"), [(body, param) for _, body, param in REFUSED], ids=[n for n, _, _ in REFUSED]
)
async def test_what_the_service_refuses_is_a_400_naming_the_field(
    in_process: Caller, body: Any, param: str
) -> None:
    result = await in_process(body)
    assert result.status == 400, result.body
    error = result.json()["error"]
    assert error["code"] == "invalid_parameter_error" and error["param"] == param


ACCEPTED = [
    chat(
        "qwen3.5-plus",
        user(
            IMAGE, FRAMES, {"type": "video_url", "video_url": {"url": "https://x/v.mp4"}, "fps": 2}
        ),
        **OFF,
    ),
    chat("qwen3-omni-flash", user(AUDIO), stream=True),
    chat(
        "qwen-long",
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "fileid://a,fileid://b"},
        HI,
    ),
    chat("qwen-plus", HI, PREFIX),
    chat(
        "qwen-mt-flash", HI, translation_options={"source_lang": "auto", "target_lang": "English"}
    ),
    chat("qwen-plus", HI, enable_search=True, search_options={"search_strategy": "max"}),
    chat("qwen-plus", HI, enable_code_interpreter=True, enable_thinking=True, stream=True),
    chat("qwen-vl-max", HI, vl_high_resolution_images=True, incremental_output=True),
]


@pytest.mark.parametrize("body", ACCEPTED)
async def test_what_the_service_takes_is_answered(in_process: Caller, body: dict[str, Any]) -> None:
    assert (await in_process(body)).status == 200


async def test_a_spoken_answer_streams_audio_that_decodes_to_the_text(call: Caller) -> None:
    result = await call(
        chat(
            "qwen3-omni-flash", {"role": "user", "content": "Say hola señor"}, stream=True, **SPEECH
        )
    )
    deltas = [choice["delta"] for chunk in result.chunks() for choice in chunk["choices"]]
    text = "".join(delta.get("content") or "" for delta in deltas)
    audio = [delta["audio"] for delta in deltas if "audio" in delta]
    assert len(audio) > 1 and len({piece["id"] for piece in audio}) == 1
    assert base64.b64decode("".join(piece["data"] for piece in audio)).decode() == text


async def test_the_gateway_envelope_wraps_audio_chunks_too(in_process: Caller) -> None:
    result = await in_process(
        chat("qwen3-omni-flash", {"role": "user", "content": "Hi"}, stream=True, **SPEECH),
        path=GATEWAY,
    )
    assert any(
        "audio" in choice["delta"]
        for chunk in result.chunks()
        for choice in chunk["data"]["choices"]
    )


async def test_cache_markers_create_then_hit_a_cache_of_1024_tokens_or_more(call: Caller) -> None:
    # The cache lives as long as the emulator (shared by this module): one document per mode.
    text = f"{call.mode}-document " + "word " * 1023
    long = {"role": "system", "content": [{"type": "text", "text": text, "cache_control": MARK}]}
    first = (await call(chat("qwen-plus", long, HI))).json()["usage"]["prompt_tokens_details"]
    assert first["cache_creation_input_tokens"] == 1024 and first["cached_tokens"] == 0
    second = await call(
        chat("qwen-plus", long, HI, stream=True, stream_options={"include_usage": True})
    )
    usage = [chunk["usage"] for chunk in second.chunks() if chunk.get("usage")][-1]
    assert usage["prompt_tokens_details"] == {"cached_tokens": 1024, "cache_type": "ephemeral"}


async def test_a_short_marked_prefix_is_not_cached(in_process: Caller) -> None:
    short = {
        "role": "user",
        "content": [{"type": "text", "text": "short text", "cache_control": MARK}],
    }
    details = (await in_process(chat("qwen-plus", short))).json()["usage"]["prompt_tokens_details"]
    assert details == {"cached_tokens": 0}


async def test_the_core_clients_aggregate_a_spoken_answer_over_a_socket(
    server: EmulatorServer,
) -> None:
    """The default transports (httpx sync, aiohttp async) against the served emulator."""
    messages = [{"role": "user", "content": "Say it aloud"}]
    with ChatClient(KEY, base_url=server.compatible_base_url) as client:
        sync_answer = client.create(model="qwen3-omni-flash", messages=messages, **SPEECH)
    async with AsyncChatClient(KEY, base_url=server.compatible_base_url) as aclient:
        async_answer = await aclient.create(model="qwen3-omni-flash", messages=messages, **SPEECH)
    for answer in (sync_answer, async_answer):
        message = answer["choices"][0]["message"]
        assert base64.b64decode(message["audio"]["data"]).decode() == message["content"]
