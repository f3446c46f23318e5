"""No cassette holds a secret: a scan for anything that looks like a key, and the redaction."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import yaml
from vcr.request import Request as VCRRequest

from opensearch_llm import ChatClient, KnowledgeClient
from opensearch_llm.knowledge import AccessKeyCredentials
from scripts.record_cassettes import (
    CASSETTES_DIR,
    KEPT_REQUEST_HEADERS,
    KEPT_RESPONSE_HEADERS,
    ROOT,
    make_vcr,
    scrub_request,
    scrub_response,
)

#: What a leaked credential looks like.
SECRET_PATTERNS: dict[str, re.Pattern[str]] = {
    "sk- key": re.compile(r"\bsk-[A-Za-z0-9_\-]{3,}"),
    "Bearer value": re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{3,}"),
    "OPENSEARCH signature": re.compile(r"\bOPENSEARCH\s+[^\s:]+:[A-Za-z0-9+/=]+"),
    "authorization header": re.compile(r"(?im)^\s*['\"]?(proxy-)?authorization['\"]?\s*:"),
    "signature header": re.compile(r"(?im)^\s*['\"]?x-(acs|opensearch)-[a-z0-9-]*['\"]?\s*:"),
    "AccessKey id": re.compile(r"\bLTAI[A-Za-z0-9]{8,}"),
    "long hex token": re.compile(r"\b[0-9a-fA-F]{32,}\b"),
}
#: Random-looking runs (base64, base64url, JWT segments) with upper case, lower case and digits.
TOKEN_RUN = re.compile(r"[A-Za-z0-9+/=_\-]{32,}")
#: Ids the service puts in bodies that are not secrets.
ALLOWED = re.compile(r"chatcmpl-[0-9A-Za-z\-]+|call_[0-9A-Za-z]+")


def findings(text: str) -> list[str]:
    """Every fragment of ``text`` that looks like a credential, with the rule it broke."""
    text = ALLOWED.sub("<id>", text)
    found = [
        f"{rule}: {m.group(0)!r}" for rule, p in SECRET_PATTERNS.items() for m in p.finditer(text)
    ]
    for match in TOKEN_RUN.finditer(text):
        run = match.group(0)
        if re.search(r"[a-z]", run) and re.search(r"[A-Z]", run) and re.search(r"\d", run):
            found.append(f"long base64 token: {run!r}")
    return found


def cassette_files() -> list[Path]:
    """Every cassette in the repository: ``cassettes/`` and any ``tests/**/cassettes/``."""
    files = sorted(CASSETTES_DIR.glob("*.yaml"))
    files += sorted((ROOT / "tests").glob("**/cassettes/*.yaml"))
    return files


def test_every_cassette_is_scanned() -> None:
    names = {path.stem for path in cassette_files()}
    assert {
        "compatible_chat",
        "compatible_stream_usage",
        "compatible_tool_calls",
        "gateway_envelope",
        "knowledge_llm",
        "error_invalid_api_key",
    } <= names


@pytest.mark.parametrize("path", cassette_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_cassette_holds_nothing_that_looks_like_a_key(path: Path) -> None:
    assert findings(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", sorted(CASSETTES_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_cassette_keeps_only_harmless_headers(path: Path) -> None:
    for interaction in yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]:
        assert {h.lower() for h in interaction["request"]["headers"]} <= KEPT_REQUEST_HEADERS
        assert {h.lower() for h in interaction["response"]["headers"]} <= KEPT_RESPONSE_HEADERS


@pytest.mark.parametrize(
    "leak",
    [
        "Authorization: Bearer abc.def-ghi",
        "    authorization:\n    - whatever",
        "'x-acs-signature-nonce': 1234",
        "  X-Opensearch-Nonce: 17000000001234",
        'api_key="sk-1234567890abcdef"',
        "OPENSEARCH LTAI5tQxYz:c2lnbmF0dXJl",
        "id LTAI5tAbCdEfGhIjKlMn",
        "token 0123456789abcdef0123456789abcdef",
        "token eyJhbGciOiJIUzI1NiJ9eyJzdWIiOiIxMjM0NTY3ODkwIn0",
    ],
)
def test_the_scan_finds_credentials(leak: str) -> None:
    assert findings(f"interactions:\n{leak}\n") != []


def test_the_scan_lets_ids_and_paths_through() -> None:
    text = (
        "id: chatcmpl-3bb05cf5cd819fbca5f0b8d67a025022, call_6596dafa2a6a46f7a217da\n"
        "uri: http://opensearch.example.com/v3/openapi/apps/my_app/actions/knowledge-llm\n"
        "x-request-id: 7a403520-184b-43fc-b13f-68606ddc5a1b\n"
    )
    assert findings(text) == []


def test_scrub_request_keeps_only_content_type_and_accept() -> None:
    headers = {
        "Authorization": "Bearer sk-secret",
        "X-Acs-Signature-Nonce": "n",
        "x-opensearch-nonce": "1",
        "Cookie": "session=1",
        "User-Agent": "opensearch-llm-python/0.1.0",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    request = scrub_request(VCRRequest("POST", "http://h/p", b"{}", headers))
    assert {name.lower() for name in request.headers} == {"content-type", "accept"}


def test_scrub_response_drops_cookies() -> None:
    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {
            "set-cookie": ["a=b"],
            "content-type": ["application/json"],
            "x-request-id": ["r"],
        },
        "body": {"string": "{}"},
    }
    assert set(scrub_response(response)["headers"]) == {"content-type", "x-request-id"}


def answer(request: httpx.Request) -> httpx.Response:
    knowledge = {"request_id": "r1", "latency": 0.1, "result": {"data": [{"answer": "a"}]}}
    chat = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "a"}}]}
    return httpx.Response(
        200,
        json=knowledge if "knowledge-llm" in request.url.path else chat,
        headers={"set-cookie": "session=secret-cookie", "x-request-id": "r1"},
    )


def test_recording_a_signed_request_keeps_no_credential(tmp_path: Path) -> None:
    """End to end: Bearer key and OPENSEARCH signature (x-opensearch-* headers) stay out."""
    key, secret = "sk-recorded-key-0123456789", "AccessKeySecret0123456789abcdef"
    credentials = AccessKeyCredentials("LTAI5tRecordedKeyId", secret)
    http = httpx.Client(transport=httpx.MockTransport(answer))
    with make_vcr("all", tmp_path).use_cassette("signed.yaml"):
        with ChatClient(key, base_url="http://h/compatible-mode/v1", http_client=http) as chat:
            chat.create(model="qwen-plus", messages=[{"role": "user", "content": "hi"}])
        options = {"host": "http://h", "app": "app", "http_client": http}
        with KnowledgeClient(auth=credentials, **options) as client:
            client.answer("q", ["c"])
    text = (tmp_path / "signed.yaml").read_text(encoding="utf-8")
    assert text.count("request:") == 2
    for secret_value in (key, secret, "LTAI5tRecordedKeyId", "secret-cookie", "OPENSEARCH"):
        assert secret_value not in text
    assert findings(text) == []
