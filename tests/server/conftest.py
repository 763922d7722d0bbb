from __future__ import annotations

import pytest

from tests.util import ServerProcess


@pytest.fixture
def server():
    """A real ``finflow-panel serve``: fast ticks and updates, quick session cleanup."""
    process = ServerProcess(
        "--tick", "0.2", "--interval", "0.2", "--seed", "7", "--session-lifetime", "0.5"
    ).start()
    yield process
    process.stop()
