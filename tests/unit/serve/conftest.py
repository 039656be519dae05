"""A real tiny deployment per module (`tiny_serve`), served in-process by `TestClient`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tiny_serve import TinyHome, ready_client, register, serve_app, tiny_home


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> TinyHome:
    """The tiny model, certified, registered and promoted; its own key signs and is trusted."""
    home = tiny_home(Path(tmp_path_factory.mktemp("serve")))
    register(home)
    return home


@pytest.fixture(scope="module")
def client(home: TinyHome) -> Iterator[TestClient]:
    with ready_client(serve_app(home)) as c:
        yield c


@pytest.fixture
def auth(home: TinyHome) -> dict[str, str]:
    return {"Authorization": f"Bearer {home.admin_key}"}
