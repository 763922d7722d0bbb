from __future__ import annotations

import pytest

from tests.util import RedisServer, require_executable


@pytest.fixture(scope="module")
def redis_server():
    """A real ``redis-server`` for the module's tests (skipped without one, unless
    FINFLOW_REQUIRE_ALL=1)."""
    server = RedisServer(require_executable("redis-server")).start()
    yield server
    server.stop()
