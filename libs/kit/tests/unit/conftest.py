import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def monkeypatch_syspath(tmp_path: Path) -> Iterator[None]:
    """Make packages written under tmp_path importable for one test."""
    sys.path.insert(0, str(tmp_path))
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith("dup_migrations")]:
            del sys.modules[name]
