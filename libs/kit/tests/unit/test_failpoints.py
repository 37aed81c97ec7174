import asyncio

import pytest

from funmagic_kit.failpoints import Failpoints


async def test_an_unset_failpoint_passes_straight_through() -> None:
    await asyncio.wait_for(Failpoints("").reach("relay.before_publish"), timeout=1)


async def test_a_hang_failpoint_marks_its_file_and_never_returns(tmp_path) -> None:
    failpoints = Failpoints("relay.before_publish=hang", str(tmp_path))

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(failpoints.reach("relay.before_publish"), timeout=0.1)
    assert (tmp_path / "relay.before_publish").exists()
