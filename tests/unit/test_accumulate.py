from typing import Any

from opensearch_llm import StreamAccumulator, aggregate_chunks


def chunk(
    delta: dict[str, Any] | None = None, *, index: int = 0, finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    choice = {"index": index, "delta": delta or {}, "finish_reason": finish}
    return {"id": "chatcmpl-1", "created": 1, "model": "qwen-plus", "choices": [choice], **extra}


def test_content_and_reasoning_are_kept_apart() -> None:
    result = aggregate_chunks(
        [
            chunk({"role": "assistant", "reasoning_content": "Let me "}),
            chunk({"reasoning_content": "think."}),
            chunk({"content": "Answer"}),
            chunk({"content": " here."}, finish="stop"),
        ]
    )
    message = result["choices"][0]["message"]
    assert message == {
        "role": "assistant",
        "content": "Answer here.",
        "reasoning_content": "Let me think.",
    }
    assert result["choices"][0]["finish_reason"] == "stop"


def test_tool_calls_merge_by_index_with_empty_ids_and_null_fields() -> None:
    result = aggregate_chunks(
        [
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "id": "", "function": {"arguments": '{"city": '}}]}),
            chunk({"tool_calls": [{"index": 0, "id": "", "function": {}}]}),
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "", "function": {"name": None, "arguments": None}}
                    ]
                }
            ),
            chunk(
                {"tool_calls": [{"index": 0, "id": "", "function": {"arguments": '"Hang zhou"}'}}]},
                finish="tool_calls",
            ),
        ]
    )
    message = result["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Hang zhou"}'},
        }
    ]


def test_parallel_calls_in_one_chunk_stay_separate() -> None:
    result = aggregate_chunks(
        [
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x":'}},
                        {"index": 1, "id": "b", "function": {"name": "g", "arguments": '{"y":'}},
                    ]
                }
            ),
            chunk(
                {
                    "tool_calls": [
                        {"index": 1, "id": "", "function": {"arguments": " 2}"}},
                        {"index": 0, "id": "", "function": {"arguments": " 1}"}},
                    ]
                },
                finish="tool_calls",
            ),
        ]
    )
    calls = result["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("a", "f", '{"x": 1}'),
        ("b", "g", '{"y": 2}'),
    ]


def test_fragments_without_index_are_told_apart_by_new_ids() -> None:
    result = aggregate_chunks(
        [
            chunk({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{"}}]}),
            chunk({"tool_calls": [{"function": {"arguments": "}"}}]}),
            chunk({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
        ]
    )
    calls = result["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["arguments"]) for c in calls] == [("a", "{}"), ("b", "{}")]


def test_fragments_are_normalised_in_place_for_readers_of_the_chunk() -> None:
    accumulator = StreamAccumulator()
    raw = chunk({"tool_calls": [{"index": 3, "id": "", "function": {}}]})
    accumulator.add(raw)
    assert raw["choices"][0]["delta"]["tool_calls"][0] == {
        "index": 3,
        "id": None,
        "type": "function",
        "function": {"name": None, "arguments": ""},
    }


def test_one_result_per_choice_when_n_is_above_one() -> None:
    result = aggregate_chunks(
        [
            chunk({"content": "A"}, index=0),
            chunk({"content": "B"}, index=1),
            chunk({"content": "a"}, index=0, finish="stop"),
            chunk({"content": "b"}, index=1, finish="length"),
        ]
    )
    assert [
        (c["index"], c["message"]["content"], c["finish_reason"]) for c in result["choices"]
    ] == [
        (0, "Aa", "stop"),
        (1, "Bb", "length"),
    ]


def test_usage_only_last_chunk_and_content_filter_finish() -> None:
    usage = {
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "total_tokens": 7,
        "completion_tokens_details": {"reasoning_tokens": 2},
        "prompt_tokens_details": {"cached_tokens": None},
    }
    result = aggregate_chunks(
        [
            chunk({"content": "x"}, finish="content_filter_output"),
            {"id": "chatcmpl-1", "choices": [], "usage": usage},
        ],
        request_id="req-1",
    )
    assert result["usage"] == usage
    assert result["choices"][0]["finish_reason"] == "content_filter_output"
    assert result["request_id"] == "req-1"
    assert result["id"] == "chatcmpl-1" and result["model"] == "qwen-plus"


def test_logprobs_are_concatenated() -> None:
    first = chunk({"content": "a"})
    first["choices"][0]["logprobs"] = {"content": [{"token": "a", "logprob": -0.1}]}
    second = chunk({"content": "b"}, finish="stop")
    second["choices"][0]["logprobs"] = {"content": [{"token": "b", "logprob": -0.2}]}
    result = aggregate_chunks([first, second])
    assert [t["token"] for t in result["choices"][0]["logprobs"]["content"]] == ["a", "b"]


def test_finished_and_empty_flags() -> None:
    accumulator = StreamAccumulator()
    assert accumulator.is_empty() and not accumulator.finished
    accumulator.add(chunk({"content": "x"}))
    assert not accumulator.is_empty() and not accumulator.finished
    accumulator.add(chunk(finish="stop"))
    assert accumulator.finished


def test_a_new_id_at_a_taken_index_starts_a_new_call() -> None:
    # Seen from services that number every parallel call 0: a new id means a new call, and the
    # id-less fragments after it continue that call.
    result = aggregate_chunks(
        [
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x": 1'}}
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "id": "", "function": {"arguments": "}"}}]}),
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "b", "function": {"name": "g", "arguments": "{"}}
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "id": "", "function": {"arguments": "}"}}]}),
            chunk(
                {"tool_calls": [{"index": 0, "id": "b", "function": {"arguments": ""}}]},
                finish="tool_calls",
            ),
        ]
    )
    calls = result["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("a", "f", '{"x": 1}'),
        ("b", "g", "{}"),
    ]
