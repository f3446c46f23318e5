"""The README's "Embeddings and rerank" example prints what its comments say it prints."""

from __future__ import annotations

import ast
import contextlib
import io
import re
from pathlib import Path

import pytest

from opensearch_llm.emulator import Emulator, serve

from .support import KEY

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    """The first python block of the README's "Embeddings and rerank" section."""
    text = README.read_text("utf-8")
    section = text[text.index("### Embeddings and rerank") :]
    found = re.search(r"^```python\n(.*?)^```", section, re.S | re.M)
    assert found is not None
    return found.group(1)


@pytest.mark.usefixtures("local_sockets")
def test_the_example_prints_the_vector_size_then_index_score_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    printed = io.StringIO()
    with serve(Emulator()) as server:
        monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", KEY)
        monkeypatch.setenv("OPENSEARCH_LLM_BASE_URL", server.compatible_base_url)
        with contextlib.redirect_stdout(printed):
            exec(compile(readme_example(), "README.md", "exec"), {"__name__": "__main__"})
    size, ranked = printed.getvalue().splitlines()
    assert size == "512"  # the comment: 512
    pairs = ast.literal_eval(ranked)  # the comment: [(index, score)]
    assert isinstance(pairs, list) and len(pairs) == 1
    (index, score), *_ = pairs
    assert index == 0 and isinstance(score, float)
