"""Copies never share a live client, a changed setting takes effect, a dropped model warns nothing.

Two served emulators, each taking only its own key: a request that goes to the wrong endpoint,
or with the wrong key, fails or is counted on the wrong emulator.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage

from langchain_opensearch_llm import ChatOpenSearchLLM, OpenSearchKnowledgeRetriever
from llama_index_opensearch_llm import OpenSearchLLM
from opensearch_llm import AsyncChatClient, AsyncKnowledgeClient, ChatClient, KnowledgeClient
from opensearch_llm.emulator import Emulator, EmulatorServer, serve
from tests.reliability.support import APP, CHAT_MODEL, PASSAGE, QUESTION

KEYS = ("sk-first-endpoint-0001", "sk-second-endpoint-0002")


@pytest.fixture(scope="module")
def endpoints() -> Iterator[list[tuple[Emulator, EmulatorServer]]]:
    emulators = [Emulator(api_key=key) for key in KEYS]
    with serve(emulators[0]) as first, serve(emulators[1]) as second:
        yield [(emulators[0], first), (emulators[1], second)]


def _lc_chat(server: EmulatorServer, key: str) -> ChatOpenSearchLLM:
    return ChatOpenSearchLLM(
        model=CHAT_MODEL, api_key=key, base_url=server.compatible_base_url, max_retries=0
    )


def _li_chat(server: EmulatorServer, key: str) -> OpenSearchLLM:
    return OpenSearchLLM(
        model=CHAT_MODEL, api_key=key, base_url=server.compatible_base_url, max_retries=0
    )


def _lc_retriever(server: EmulatorServer, key: str) -> OpenSearchKnowledgeRetriever:
    return OpenSearchKnowledgeRetriever(
        api_key=key, host=server.origin, app=APP, content=[PASSAGE], max_retries=0
    )


def _where(server: EmulatorServer, model: Any) -> dict[str, Any]:
    """The settings that point ``model`` at ``server``."""
    if isinstance(model, OpenSearchKnowledgeRetriever):
        return {"host": server.origin}
    return {"base_url": server.compatible_base_url}


def _call(model: Any) -> str:
    if isinstance(model, OpenSearchLLM):
        return str(model.chat([ChatMessage(role="user", content=QUESTION)]).message.content)
    if isinstance(model, OpenSearchKnowledgeRetriever):
        return model.invoke(QUESTION)[0].page_content
    return str(model.invoke(QUESTION).content)


async def _acall(model: Any) -> str:
    if isinstance(model, OpenSearchLLM):
        answer = await model.achat([ChatMessage(role="user", content=QUESTION)])
        return str(answer.message.content)
    if isinstance(model, OpenSearchKnowledgeRetriever):
        return (await model.ainvoke(QUESTION))[0].page_content
    return str((await model.ainvoke(QUESTION)).content)


MODELS = [_lc_chat, _li_chat, _lc_retriever]
MODEL_IDS = ["langchain chat", "llama-index chat", "langchain knowledge retriever"]


def _model_copy(model: Any, update: dict[str, Any]) -> Any:
    return model.model_copy(update=update)


def _copy_then_set(model: Any, update: dict[str, Any]) -> Any:
    clone = copy.copy(model)
    for name, value in update.items():
        setattr(clone, name, value)
    return clone


def _deepcopy_then_set(model: Any, update: dict[str, Any]) -> Any:
    clone = copy.deepcopy(model)
    for name, value in update.items():
        setattr(clone, name, value)
    return clone


@pytest.mark.parametrize("make", MODELS, ids=MODEL_IDS)
@pytest.mark.parametrize("copier", [_model_copy, _copy_then_set, _deepcopy_then_set])
@pytest.mark.parametrize("original_first", [True, False], ids=["original first", "copy first"])
@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_copy_sends_with_its_own_key_to_its_own_endpoint(
    endpoints: list[tuple[Emulator, EmulatorServer]],
    make: Callable[[EmulatorServer, str], Any],
    copier: Callable[[Any, dict[str, Any]], Any],
    original_first: bool,
    asynchronous: bool,
) -> None:
    (first, first_server), (second, second_server) = endpoints
    original = make(first_server, KEYS[0])

    def use(model: Any) -> None:
        if asynchronous:
            asyncio.run(_acall(model))
        else:
            _call(model)

    if original_first:
        use(original)
    clone = copier(original, {"api_key": KEYS[1], **_where(second_server, original)})
    first.reset()
    second.reset()
    for model in (original, clone) if original_first else (clone, original):
        use(model)
    assert (first.request_count, second.request_count) == (1, 1)
    use(original)
    assert (first.request_count, second.request_count) == (2, 1)


@pytest.mark.parametrize("make", MODELS, ids=MODEL_IDS)
def test_settings_changed_after_use_take_effect(
    endpoints: list[tuple[Emulator, EmulatorServer]], make: Callable[[EmulatorServer, str], Any]
) -> None:
    (first, first_server), (second, second_server) = endpoints
    model = make(first_server, KEYS[0])
    _call(model)
    asyncio.run(_acall(model))
    first.reset()
    second.reset()
    for name, value in _where(second_server, model).items():
        setattr(model, name, value)
    model.api_key = KEYS[1]
    _call(model)
    asyncio.run(_acall(model))
    assert (first.request_count, second.request_count) == (0, 2)
    model.max_retries = 0  # a setting the clients are made from: made anew, same endpoint
    _call(model)
    assert second.request_count == 3


def _resource_warnings(run: Callable[[], None]) -> list[str]:
    gc.collect()  # what earlier tests left behind is not this test's to judge
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def _dropped_models(server: EmulatorServer) -> list[Any]:
    chat = {"api_key": KEYS[0], "base_url": server.compatible_base_url}
    knowledge = {"api_key": KEYS[0], "host": server.origin, "app": APP}
    return [
        _lc_chat(server, KEYS[0]),
        _li_chat(server, KEYS[0]),
        _lc_retriever(server, KEYS[0]),
        ChatClient(**chat),
        AsyncChatClient(**chat),
        KnowledgeClient(**knowledge),
        AsyncKnowledgeClient(**knowledge),
    ]


async def _use_async(model: Any) -> None:
    if isinstance(model, AsyncChatClient):
        await model.create(model=CHAT_MODEL, messages=[{"role": "user", "content": QUESTION}])
        async with model.stream(
            model=CHAT_MODEL, messages=[{"role": "user", "content": QUESTION}]
        ) as stream:
            await stream.collect()
    elif isinstance(model, AsyncKnowledgeClient):
        await model.answer(QUESTION, [PASSAGE])
    elif not isinstance(model, (ChatClient, KnowledgeClient)):
        await _acall(model)


def _use_sync(model: Any) -> None:
    if isinstance(model, ChatClient):
        model.create(model=CHAT_MODEL, messages=[{"role": "user", "content": QUESTION}])
    elif isinstance(model, KnowledgeClient):
        model.answer(QUESTION, [PASSAGE])
    elif not isinstance(model, (AsyncChatClient, AsyncKnowledgeClient)):
        _call(model)


async def _use_all_async(models: list[Any]) -> None:
    for model in models:
        await _use_async(model)


def test_models_dropped_without_close_release_their_pools_and_warn_nothing(
    endpoints: list[tuple[Emulator, EmulatorServer]],
) -> None:
    emulator, server = endpoints[0]

    def use_and_drop() -> None:
        models = _dropped_models(server)
        for model in models:
            _use_sync(model)
        asyncio.run(_use_all_async(models))  # the loop ends with the pools open
        del models

    emulator.reset()
    assert _resource_warnings(use_and_drop) == []
    assert emulator.request_count == 11  # every model was used


def test_an_async_pool_in_a_loop_that_goes_on_is_released_when_dropped(
    endpoints: list[tuple[Emulator, EmulatorServer]],
) -> None:
    server = endpoints[0][1]

    async def use_and_drop() -> None:
        models = _dropped_models(server)
        for model in models:
            await _use_async(model)
        del models
        gc.collect()
        await asyncio.sleep(0.05)  # the loop closes what the finalizers handed it

    assert _resource_warnings(lambda: asyncio.run(use_and_drop())) == []
