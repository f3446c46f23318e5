import pytest

from .mock_service import Caller


@pytest.fixture(params=["sync", "async"])
def caller(request: pytest.FixtureRequest) -> Caller:
    """The same test body against ``ChatClient`` and ``AsyncChatClient``."""
    return Caller(request.param)
