"""The batch file formats: pure functions, no sockets."""

from __future__ import annotations

import json

import pytest

from opensearch_llm import (
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    ContextWindowExceededError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    RequestValidationError,
)
from opensearch_llm.batch._formats import (
    CHAT_URL,
    KNOWLEDGE_URL,
    RUN_APP,
    BadRow,
    Row,
    chat_arguments,
    error_code,
    error_line,
    estimated_tokens,
    knowledge_app,
    knowledge_arguments,
    line_error,
    normalised_line,
    parse_line,
    refuse_batch_api_row,
    request_line,
    result_columns,
    result_line,
    retried_on_rerun,
)

MESSAGES = [{"role": "user", "content": "What is 2+2?"}]


def test_a_batch_api_line_is_read_as_it_is() -> None:
    text = json.dumps(
        {
            "custom_id": "1",
            "method": "POST",
            "url": CHAT_URL,
            "body": {"model": "qwen-plus", "messages": MESSAGES},
        }
    )
    row = parse_line(text, 7)
    assert row == Row("1", CHAT_URL, {"model": "qwen-plus", "messages": MESSAGES})
    assert request_line(row) == json.loads(text)


def test_plain_lines_get_a_custom_id_from_their_line_number_and_the_default_model() -> None:
    row = parse_line(json.dumps({"messages": MESSAGES, "temperature": 0.1}), 3, model="qwen-flash")
    assert row == Row(
        "row-3", CHAT_URL, {"messages": MESSAGES, "temperature": 0.1, "model": "qwen-flash"}
    )
    prompt = parse_line(
        '{"prompt": "Hi", "system": "Be brief", "model": "qwen-max"}', 4, "qwen-flash"
    )
    assert isinstance(prompt, Row) and prompt.custom_id == "row-4"
    assert prompt.body == {
        "model": "qwen-max",
        "messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}],
    }


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("{not json", "line 5"),
        ("[1, 2]", "line 5"),
        (
            '{"custom_id": "a", "method": "GET", "url": "/v1/chat/completions", "body": {}}',
            "line 5: method",
        ),
        ('{"custom_id": "a", "url": "/v1/chat/completions", "body": "text"}', "line 5: body"),
        ('{"custom_id": "a", "prompt": ""}', "line 5: prompt"),
    ],
)
def test_a_line_that_is_not_a_request_is_a_bad_row_naming_the_field(text: str, field: str) -> None:
    row = parse_line(text, 5)
    assert isinstance(row, BadRow)
    assert row.error.field == field
    assert row.custom_id == ("a" if '"a"' in text else "row-5")


def test_chat_arguments_name_known_parameters_and_pass_the_rest_in_extra_body() -> None:
    body = {
        "model": "m",
        "messages": MESSAGES,
        "temperature": 0.2,
        "stream": True,
        "x_service_extension": True,
    }
    assert chat_arguments(body) == {
        "model": "m",
        "messages": MESSAGES,
        "temperature": 0.2,
        "extra_body": {"x_service_extension": True},
    }


def test_estimated_tokens_count_the_text_and_the_longest_answer() -> None:
    short = estimated_tokens({"messages": MESSAGES})
    assert 0 < short < 20
    assert estimated_tokens({"messages": MESSAGES, "max_tokens": 100, "n": 2}) == short + 200


def test_result_and_error_lines_have_the_batch_api_shape() -> None:
    completion = {
        "id": "chatcmpl-r1",
        "request_id": "r1",
        "choices": [],
        "usage": {"total_tokens": 3},
    }
    assert result_line("a", completion) == {
        "id": "r1",
        "custom_id": "a",
        "response": {"status_code": 200, "request_id": "r1", "body": completion},
        "error": None,
    }
    error = BadRequestError(
        "bad", status=400, code="invalid_parameter_error", request_id="r2", body={"x": 1}
    )
    line = error_line("b", error)
    assert line["response"] == {"status_code": 400, "request_id": "r2", "body": {"x": 1}}
    assert line["error"]["code"] == "invalid_parameter_error" and "bad" in line["error"]["message"]
    assert error_line("c", APITimeoutError("slow"))["response"] is None


def test_error_codes_are_the_services_else_our_class_in_snake_case() -> None:
    assert (
        error_code(BadRequestError("x", status=400, code="data_inspection_failed"))
        == "data_inspection_failed"
    )
    assert error_code(APITimeoutError("x")) == "api_timeout_error"
    assert error_code(RequestValidationError("f", 1, "2")) == "request_validation_error"


def test_error_lines_are_read_with_either_field_names() -> None:
    ours = {"custom_id": "a", "error": {"code": "c", "message": "m"}}
    doc_script = {"custom_id": "a", "error": {"error_code": "c", "error_message": "m"}}
    assert line_error(ours)["code"] == line_error(doc_script)["code"] == "c"
    assert line_error(doc_script)["message"] == "m"
    assert normalised_line(doc_script)["error"]["code"] == "c"
    not_ok = {"custom_id": "a", "response": {"status_code": 500, "body": {"error": {"code": "x"}}}}
    assert line_error(not_ok)["code"] == "x"
    assert line_error({"custom_id": "a", "response": {"status_code": 200, "body": {}}}) is None


def test_result_columns_flatten_the_answer_and_the_error() -> None:
    completion = {
        "request_id": "r1",
        "choices": [{"message": {"content": "4"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
    columns = result_columns(result_line("a", completion))
    assert columns["content"] == "4" and columns["finish_reason"] == "stop"
    assert columns["total_tokens"] == 6 and columns["error_code"] is None
    failed = result_columns(error_line("b", APITimeoutError("slow")))
    assert failed["content"] is None and failed["error_code"] == "api_timeout_error"


def test_the_public_surface_is_pinned_and_loads_no_optional_extra() -> None:
    import subprocess
    import sys

    import opensearch_llm.batch as batch

    assert sorted(batch.__all__) == [
        "BadRow", "BatchAPIClient", "BatchFailedError", "BatchSummary", "ChatPredictor",
        "DEFAULT_BATCH_MAX_RETRIES", "DEFAULT_CONCURRENCY", "RESULT_COLUMNS", "Row", "arun",
        "parse_line", "parse_record", "run", "run_batch_api",
    ]  # fmt: skip
    assert all(getattr(batch, name) is not None for name in batch.__all__)
    code = "import sys, opensearch_llm.batch; print(sorted({'ray', 'pyarrow', 'pandas'} & set(sys.modules)))"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
        == "[]"
    )


def test_an_extra_body_that_is_not_an_object_is_refused_naming_it() -> None:
    for value in ("x", ["a"], 3):
        with pytest.raises(RequestValidationError) as caught:
            chat_arguments({"model": "m", "messages": MESSAGES, "extra_body": value})
        assert caught.value.field == "body.extra_body"
    merged = chat_arguments({"messages": MESSAGES, "extra_body": {"a": 1}, "b": 2})
    assert merged["extra_body"] == {"a": 1, "b": 2}


@pytest.mark.parametrize("choices", [{"0": {"message": {"content": "x"}}}, "text", [], ["x"], None])
def test_result_columns_take_any_shape_of_choices(choices: object) -> None:
    line = result_line("a", {"request_id": "r", "choices": choices})
    columns = result_columns(line)
    assert columns["content"] is None and columns["custom_id"] == "a"


def test_an_unexpected_error_is_a_line_with_its_type_and_a_code() -> None:
    line = error_line("a", KeyError("missing"))
    assert line["error"] == {
        "code": "unexpected_error",
        "message": "KeyError: 'missing'",
        "type": "KeyError",
    }
    assert line["response"] is None


# --------------------------------------------------------------------------- knowledge-llm rows

KNOWLEDGE_BODY = {"question": "What is OpenSearch?", "content": ["OpenSearch is a search engine."]}


def test_knowledge_lines_are_plain_question_lines_or_lines_with_the_action_path() -> None:
    plain = parse_line(json.dumps({"custom_id": "k", **KNOWLEDGE_BODY}), 1, model="qwen-plus")
    assert plain == Row("k", KNOWLEDGE_URL, KNOWLEDGE_BODY)  # the chat model does not fill it
    assert knowledge_app(KNOWLEDGE_URL) == RUN_APP  # the run's application
    url = "/v3/openapi/apps/my_app/actions/knowledge-llm"
    line = {"custom_id": "u", "method": "POST", "url": url, "body": KNOWLEDGE_BODY}
    row = parse_line(json.dumps(line), 2, model="qwen-plus")
    assert row == Row("u", url, KNOWLEDGE_BODY) and knowledge_app(url) == "my_app"
    for chat_line in ({"question": "q", "messages": MESSAGES}, {"question": "q", "prompt": "p"}):
        chat = parse_line(json.dumps(chat_line), 3)
        assert isinstance(chat, Row) and chat.url == CHAT_URL  # messages or prompt: a chat line
    for other in (CHAT_URL, "/v1/embeddings", "/v3/openapi/apps/a/b/actions/knowledge-llm"):
        assert knowledge_app(other) is None


def test_knowledge_arguments_drop_stream_and_pass_unknown_fields_in_extra_body() -> None:
    body = {
        **KNOWLEDGE_BODY,
        "type": "text",
        "csi_level": "loose",
        "model": "qwen-plus",
        "options": {"stream": True, "chat_history": []},
        "x_new_field": 1,
    }
    assert knowledge_arguments(body) == {
        **KNOWLEDGE_BODY,
        "type": "text",
        "csi_level": "loose",
        "model": "qwen-plus",
        "extra_body": {"options": {"chat_history": []}, "x_new_field": 1},
    }
    assert knowledge_arguments({"prompt": "p", "options": {"stream": False}}) == {"prompt": "p"}


def test_a_body_s_own_extra_body_is_merged_for_knowledge_rows_as_for_chat_rows() -> None:
    extra = {"extra_body": {"foo": 1}, "bar": 2}
    assert knowledge_arguments({**KNOWLEDGE_BODY, **extra})["extra_body"] == {"foo": 1, "bar": 2}
    assert chat_arguments({"model": "m", **extra})["extra_body"] == {"foo": 1, "bar": 2}
    for arguments in (knowledge_arguments, chat_arguments):
        with pytest.raises(RequestValidationError, match="extra_body"):
            arguments({**KNOWLEDGE_BODY, "extra_body": [1]})


def test_the_batch_api_check_refuses_knowledge_rows_naming_them() -> None:
    refuse_batch_api_row(Row("c", CHAT_URL, {}))
    refuse_batch_api_row(Row("e", "/v1/embeddings", {}))
    for url in (KNOWLEDGE_URL, "/v3/openapi/apps/my_app/actions/knowledge-llm"):
        with pytest.raises(RequestValidationError) as caught:
            refuse_batch_api_row(Row("k-7", url, KNOWLEDGE_BODY))
        assert caught.value.field == "row k-7: url" and "--via online" in str(caught.value)


def test_knowledge_result_lines_give_the_answer_as_content() -> None:
    answer = {
        "request_id": "r1",
        "latency": 0.1,
        "result": {"data": [{"answer": "It is ", "type": "text"}, {"answer": "a search engine."}]},
        "errors": [],
    }
    line = result_line("k", answer)
    assert line["response"] == {"status_code": 200, "request_id": "r1", "body": answer}
    columns = result_columns(line)
    assert columns["content"] == "It is a search engine." and columns["error_code"] is None
    assert result_columns(result_line("k", {"result": "?"}, "r2"))["request_id"] == "r2"
    assert result_columns(result_line("k", {"result": "?"}))["content"] is None
    failed = error_line("k", BadRequestError("no", status=200, code="1001", body=answer))
    assert (
        result_columns(failed)["content"] is None and result_columns(failed)["error_code"] == "1001"
    )


def test_estimated_tokens_of_a_knowledge_row_count_its_question_and_passages() -> None:
    assert estimated_tokens(KNOWLEDGE_BODY) > estimated_tokens({"question": "What is OpenSearch?"})
    assert estimated_tokens({"question": "x" * 400}) >= 100


# --------------------------------------------------------------------------- retry_failed


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (InternalServerError("down", status=503, code="service_unavailable"), True),
        (RateLimitError("slow down", status=429), True),
        (APITimeoutError("slow"), True),
        (AuthenticationError("key", status=401), True),  # a key mended since
        (NotFoundError("model", status=404, code="model_not_found"), True),
        (RequestValidationError("model", None, "a model"), True),  # never sent: costs nothing
        (KeyError("a bug"), True),
        (BadRequestError("bad", status=400, code="invalid_parameter_error"), False),
        (ContextWindowExceededError("long", status=400, code="InvalidParameter"), False),
        (ContentFilterError("blocked", status=400, code="data_inspection_failed"), False),
        (ContentFilterError("blocked", status=200, code="data_inspection_failed"), False),
    ],
)
def test_a_rerun_retries_failed_rows_but_those_the_service_refused_as_requests(
    error: Exception, retried: bool
) -> None:
    assert retried_on_rerun(error_line("a", error)) is retried


def test_downloaded_lines_are_judged_by_their_status_and_code_as_the_core_classifies() -> None:
    downloaded = {"custom_id": "a", "response": {"status_code": 400}, "error": {"code": "x"}}
    assert not retried_on_rerun(downloaded)
    assert retried_on_rerun({**downloaded, "response": {"status_code": 500}})
    assert retried_on_rerun({"custom_id": "a", "response": None, "error": {"code": "x"}})
    for refused in (  # an error file's line: no response, or 200; the code says it was refused
        {"custom_id": "a", "response": None, "error": {"code": "InvalidParameter"}},
        {"custom_id": "a", "error": {"error_code": "data_inspection_failed"}},
        {
            "custom_id": "a",
            "response": {"status_code": 200},
            "error": {"code": "DataInspectionFailed"},
        },
    ):
        assert not retried_on_rerun(refused), refused
    assert not retried_on_rerun(result_line("a", {"request_id": "r", "choices": []}))
