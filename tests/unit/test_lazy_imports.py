"""What importing the packages loads: httpx with the first sync client, aiohttp with the first
async one, tenacity with the first retry.

Each check runs in a fresh interpreter (this one has imported everything already).
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
from pydantic import ValidationError

WATCHED = ("httpx", "aiohttp", "tenacity", "langchain_opensearch_llm.retrievers")


def loaded_at_marks(code: str) -> list[dict[str, bool]]:
    """Run ``code``; at each ``mark()`` it calls, which of ``WATCHED`` were imported."""
    probe = (
        "import sys, json\n"
        "marks = []\n"
        f"def mark():\n    marks.append({{m: m in sys.modules for m in {WATCHED!r}}})\n"
        f"{code}\n"
        "print(json.dumps(marks))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_core_and_the_langchain_adapter_loads_no_http_library_nor_tenacity() -> None:
    (loaded,) = loaded_at_marks("import opensearch_llm, langchain_opensearch_llm\nmark()")
    assert loaded == dict.fromkeys(WATCHED, False)


def test_the_first_client_loads_httpx_and_a_call_that_succeeds_never_loads_tenacity() -> None:
    before, made, called = loaded_at_marks(
        "from opensearch_llm import ChatClient\n"
        "mark()\n"
        "client = ChatClient(api_key='sk-test', base_url='http://emulator.local/compatible-mode/v1')\n"
        "mark()\n"
        "from opensearch_llm.emulator import Emulator\n"
        "import httpx\n"
        "client = ChatClient(api_key='sk-test', base_url='http://emulator.local/compatible-mode/v1',"
        " http_client=httpx.Client(transport=Emulator().transport()))\n"
        "client.create(model='qwen-plus', messages=[{'role': 'user', 'content': 'hi'}])\n"
        "mark()"
    )
    assert not before["httpx"] and made["httpx"] and not made["aiohttp"]
    assert not called["tenacity"]


def test_the_first_async_client_loads_aiohttp_and_not_httpx() -> None:
    before, made = loaded_at_marks(
        "from opensearch_llm import AsyncChatClient, AsyncKnowledgeClient\n"
        "mark()\n"
        "AsyncChatClient(api_key='sk-test', base_url='http://emulator.local/compatible-mode/v1')\n"
        "AsyncKnowledgeClient(api_key='sk-test', host='http://emulator.local', app='a')\n"
        "mark()"
    )
    assert not before["aiohttp"] and made["aiohttp"] and not made["httpx"]


def test_a_retry_loads_tenacity() -> None:
    (loaded,) = loaded_at_marks(
        "import httpx\n"
        "from opensearch_llm import ChatClient\n"
        "from opensearch_llm.emulator import Emulator\n"
        "emu = Emulator()\n"
        "emu.script_faults(['503'])\n"
        "client = ChatClient(api_key='sk-test', base_url='http://emulator.local/compatible-mode/v1',"
        " http_client=httpx.Client(transport=emu.transport()), max_retries=1)\n"
        "client.create(model='qwen-plus', messages=[{'role': 'user', 'content': 'hi'}])\n"
        "mark()"
    )
    assert loaded["tenacity"]


def test_the_knowledge_classes_load_when_first_named() -> None:
    before, after = loaded_at_marks(
        "import langchain_opensearch_llm as lc\n"
        "mark()\n"
        "assert 'OpenSearchKnowledgeRetriever' in dir(lc)\n"
        "from langchain_opensearch_llm import KnowledgeQuery, OpenSearchKnowledgeRetriever\n"
        "from langchain_opensearch_llm.retrievers import OpenSearchKnowledgeRetriever as direct\n"
        "assert OpenSearchKnowledgeRetriever is direct\n"
        "mark()"
    )
    assert not before["langchain_opensearch_llm.retrievers"]
    assert after["langchain_opensearch_llm.retrievers"]
    import langchain_opensearch_llm

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = langchain_opensearch_llm.Nope  # type: ignore[attr-defined]


def test_an_http_client_field_takes_only_an_httpx_client_of_its_kind() -> None:
    from langchain_opensearch_llm import ChatOpenSearchLLM
    from llama_index_opensearch_llm import OpenSearchLLM

    with pytest.raises(ValidationError, match=r"http_client[\s\S]*expected an httpx.Client"):
        ChatOpenSearchLLM(api_key="sk-test", http_client=httpx.AsyncClient())  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"async_http_client[\s\S]*httpx.AsyncClient"):
        OpenSearchLLM(api_key="sk-test", async_http_client="http://not-a-client")  # type: ignore[arg-type]
    with httpx.Client() as sync:
        assert ChatOpenSearchLLM(api_key="sk-test", http_client=sync).http_client is sync
