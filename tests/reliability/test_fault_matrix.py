"""Every emulator fault, dialect, streamed or not, path and mode: generated from ``matrix``.

Each case scripts the fault for as many attempts as the client may make (``persistent``: the
caller must get the expected typed error), or for one attempt only (``one-off``: a retried
fault must end in the full answer). Both check the number of requests the emulator saw, the
time taken, the text yielded before a stream broke against the error's ``partial``, and that
the pool holds no connection that is neither idle nor closed afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from opensearch_llm import APIStatusError, StreamError
from opensearch_llm.emulator import FAULT_NAMES, Emulator, EmulatorServer
from tests.reliability.matrix import (
    COLUMNS,
    DOC,
    MAX_RETRIES,
    PATHS,
    ROWS,
    Outcome,
    Row,
    doc_section,
    paths_for,
    render_matrix,
)
from tests.reliability.surfaces import SURFACES, Result, Settings, Surface, open_surface

#: Seconds any case may take beyond the timeouts it waits for (2 busy cores, generous).
SLACK = 3.0
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Case:
    """One generated test case."""

    row: Row
    path: str
    streamed: bool
    mode: str
    one_off: bool
    outcome: Outcome

    @property
    def id(self) -> str:
        """A readable test id."""
        how = "stream" if self.streamed else "call"
        scenario = "one-off" if self.one_off else "persistent"
        return f"{self.row.name}-{self.path}-{how}-{self.mode}-{scenario}"

    @property
    def attempts(self) -> int:
        """The requests the emulator must see."""
        if self.one_off:
            return 2
        return MAX_RETRIES + 1 if self.outcome.retried else 1

    @property
    def deadline(self) -> float:
        """Seconds the case may take: its timeouts and waits, plus slack."""
        waits = (self.row.timeout or 0.0) + self.row.retry_after
        return SLACK + self.attempts * waits


def _cases() -> list[Case]:
    cases = []
    for row in ROWS:
        for _, dialect, streamed in COLUMNS:
            outcome = row.outcome(dialect, streamed)
            if outcome is None:
                continue
            scenarios = [False, True] if outcome.retried else [False]
            for path in paths_for(dialect, streamed):
                for mode in ("sync", "async"):
                    for one_off in scenarios:
                        cases.append(Case(row, path.key, streamed, mode, one_off, outcome))
    return cases


CASES = _cases()

#: (fault, dialect, streamed) -> why those cases fail today; the lead removes an entry with its fix.
KNOWN_BUGS: dict[tuple[str, str, bool], str] = {}


def _param(case: Case) -> object:
    bug = KNOWN_BUGS.get((case.row.name, SURFACES[case.path].dialect, case.streamed))
    marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
async def test_fault(case: Case, server: EmulatorServer, emulator: Emulator) -> None:
    faults = [case.row.fault()] * (1 if case.one_off else case.attempts)
    emulator.script_faults(faults)
    settings = Settings(
        max_retries=MAX_RETRIES,
        timeout=case.row.timeout or DEFAULT_TIMEOUT,
        gateway=case.row.gateway,
    )
    surface = await open_surface(case.path, server, case.mode, case.streamed, settings)
    sink: list[str] = []
    start = time.monotonic()
    try:
        result, error = await surface.run(sink), None
    except Exception as caught:
        result, error = None, caught
    elapsed = time.monotonic() - start
    try:
        if case.one_off or case.outcome.error is None:
            assert error is None, f"expected success, got {error!r}"
            assert result is not None
            _check_success(case, surface, result)
        else:
            _check_error(case, surface, error, sink)
        assert emulator.request_count == case.attempts
        assert elapsed < case.deadline, f"took {elapsed:.2f}s"
        if case.one_off and case.row.retry_after:
            assert elapsed >= case.row.retry_after, "Retry-After was not honoured"
        assert surface.busy_connections() == []
    finally:
        await surface.close()


def _check_success(case: Case, surface: Surface, result: Result) -> None:
    if case.outcome.truncated and not case.one_off:
        assert result.finish_reason == "content_filter"
        assert result.text and surface.expected.startswith(result.text)
        assert result.text != surface.expected
        return
    assert result.text == surface.expected
    if surface.dialect == "chat":
        assert result.finish_reason == "stop"


def _check_error(case: Case, surface: Surface, error: Exception | None, sink: list[str]) -> None:
    expected = case.outcome
    assert expected.error is not None
    assert isinstance(error, expected.error), f"expected {expected.error.__name__}: {error!r}"
    if surface.framework_error is not None:
        assert isinstance(error, surface.framework_error)
    if expected.partial:
        assert isinstance(error, StreamError)
        received = "".join(sink)
        assert received, "the stream broke before yielding anything"
        assert surface.partial_text(error) == received
        assert surface.expected.startswith(received)
        if expected.cause is not None:
            assert isinstance(error.cause, expected.cause)
        return
    assert "".join(sink) == "", "an error before the first byte yielded text"
    if isinstance(error, APIStatusError):
        assert error.request_id, "no request id on a service error"
    if expected.status is not None:
        assert getattr(error, "status", None) == expected.status
    if expected.code is not None:
        assert getattr(error, "code", None) == expected.code
    if case.row.retry_after:
        assert getattr(error, "retry_after", None) == case.row.retry_after


# --------------------------------------------------------------------------- the table itself


def test_every_emulator_fault_has_a_row() -> None:
    assert sorted(row.name for row in ROWS) == sorted(FAULT_NAMES)


def test_every_path_is_implemented() -> None:
    assert [path.key for path in PATHS] == list(SURFACES)
    assert all(SURFACES[path.key].dialect == path.dialect for path in PATHS)


def test_every_column_has_cases() -> None:
    covered = {(case.row.name, case.path, case.streamed, case.mode) for case in CASES}
    for row in ROWS:
        for _, dialect, streamed in COLUMNS:
            if row.outcome(dialect, streamed) is None:
                continue
            for path in paths_for(dialect, streamed):
                for mode in ("sync", "async"):
                    assert (row.name, path.key, streamed, mode) in covered


def test_doc_is_in_sync() -> None:
    assert doc_section(DOC.read_text()) == render_matrix(), (
        "docs/reliability.md is out of date: run python -m tests.reliability.matrix --write"
    )
