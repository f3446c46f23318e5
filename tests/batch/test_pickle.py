"""Objects sent to workers (Ray, multiprocessing) pickle without their pools and rebuild them."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import pickle
from copy import copy as shallow_copy
from typing import Any

import pytest

from opensearch_llm import AsyncChatClient, AsyncKnowledgeClient, ChatClient, KnowledgeClient
from opensearch_llm.batch import ChatPredictor
from opensearch_llm.emulator import Emulator, EmulatorServer

from .support import KEY

MESSAGES = [{"role": "user", "content": "hi"}]


def _used_objects(server: EmulatorServer) -> dict[str, Any]:
    """One of each, used once (so that each holds an open pool)."""
    from langchain_opensearch_llm import ChatOpenSearchLLM
    from langchain_opensearch_llm import OpenSearchKnowledgeRetriever as LangChainKnowledge
    from llama_index_opensearch_llm import OpenSearchLLM
    from llama_index_opensearch_llm.knowledge import OpenSearchKnowledgeRetriever

    url = server.compatible_base_url
    objects: dict[str, Any] = {
        "ChatClient": ChatClient(KEY, base_url=url),
        "KnowledgeClient": KnowledgeClient(KEY, host=server.origin, app="a"),
        "ChatOpenSearchLLM": ChatOpenSearchLLM(api_key=KEY, base_url=url, model="qwen-plus"),
        "OpenSearchLLM": OpenSearchLLM(api_key=KEY, base_url=url, model="qwen-plus"),
        "LangChain knowledge": LangChainKnowledge(api_key=KEY, host=server.origin, app="a"),
        "LlamaIndex knowledge": OpenSearchKnowledgeRetriever(
            api_key=KEY, host=server.origin, app="a"
        ),
        "ChatPredictor": ChatPredictor("qwen-plus", api_key=KEY, base_url=url, concurrency=2),
    }
    for obj in objects.values():
        _use(obj)
    return objects


def _use(obj: Any) -> str:
    """Call the service through ``obj``; the answer's text."""
    if isinstance(obj, ChatClient):
        return str(
            obj.create(model="qwen-plus", messages=MESSAGES)["choices"][0]["message"]["content"]
        )
    if isinstance(obj, KnowledgeClient):
        return obj.answer(question="hi").answer
    if isinstance(obj, ChatPredictor):
        return str(obj({"prompt": ["hi"]})["content"][0])
    if hasattr(obj, "invoke") and hasattr(obj, "bind_tools"):
        return str(obj.invoke("hi").content)
    if hasattr(obj, "complete"):
        return obj.complete("hi").text
    if hasattr(obj, "invoke"):
        return obj.invoke("hi")[0].page_content
    return str(obj.retrieve("hi")[0].node.get_content())


def _close(*objects: Any) -> None:
    for obj in objects:
        if hasattr(obj, "close"):
            obj.close()


def test_used_clients_models_and_predictors_pickle_and_work_again(served: Any) -> None:
    server = served(Emulator())
    for name, obj in _used_objects(server).items():
        copy = pickle.loads(pickle.dumps(obj))
        assert _use(copy) == _use(obj), name
        assert KEY not in repr(copy), name
        _close(obj, copy)


async def test_async_clients_pickle_after_use_and_work_in_another_loop(served: Any) -> None:
    server = served(Emulator())
    chat = AsyncChatClient(KEY, base_url=server.compatible_base_url)
    knowledge = AsyncKnowledgeClient(KEY, host=server.origin, app="a")
    await chat.create(model="qwen-plus", messages=MESSAGES)
    await knowledge.answer(question="hi")
    copies = pickle.loads(pickle.dumps((chat, knowledge)))

    def elsewhere() -> str:
        async def use() -> str:
            answer = await copies[0].create(model="qwen-plus", messages=MESSAGES)
            text = (await copies[1].answer(question="hi")).answer
            await copies[0].aclose()
            await copies[1].aclose()
            return str(answer["choices"][0]["message"]["content"]) + " / " + text

        return asyncio.run(use())

    assert await asyncio.to_thread(elsewhere) == "You said: hi / Answer to: hi"
    await chat.aclose()
    await knowledge.aclose()


def _in_a_worker(payload: bytes) -> list[str]:
    return [_use(obj) for obj in pickle.loads(payload)]


def test_pickled_objects_work_in_a_worker_process(served: Any) -> None:
    server = served(Emulator())
    objects = _used_objects(server)
    payload = pickle.dumps(
        [objects["ChatClient"], objects["ChatOpenSearchLLM"], objects["ChatPredictor"]]
    )
    _close(*objects.values())
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        assert pool.submit(_in_a_worker, payload).result(timeout=60) == ["You said: hi"] * 3


@pytest.mark.parametrize("cls", [ChatClient, AsyncChatClient])
def test_an_injected_http_client_stays_behind(cls: Any) -> None:
    import httpx

    emulator = Emulator()
    injected = (
        httpx.Client(transport=emulator.transport())
        if cls is ChatClient
        else httpx.AsyncClient(transport=emulator.async_transport())
    )
    client = cls(KEY, base_url="http://emulator.local/compatible-mode/v1", http_client=injected)
    copy = pickle.loads(pickle.dumps(client))
    assert copy._transport.sender is not client._transport.sender
    assert getattr(copy._transport.sender, "http_client", None) is not injected
    assert shallow_copy(client)._transport is client._transport  # copy.copy shares, as before
