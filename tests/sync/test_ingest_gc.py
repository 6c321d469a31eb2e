"""National ingest pauses the cyclic collector while batches are in hand, never for long."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from sync.ingest import decode
from sync.ingest.decode import gc_paused


@pytest.fixture(autouse=True)
def collector_enabled() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_the_collector_resumes_when_the_last_batch_in_hand_is_done() -> None:
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # a second batch in flight
            assert not gc.isenabled()
        assert not gc.isenabled()  # the first is still in hand
    assert gc.isenabled()


def test_overlapping_batches_do_not_keep_the_collector_paused_for_ever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(decode, "MAX_GC_PAUSE_S", -1.0)  # any pause is too long
    with gc_paused():
        with gc_paused():
            pass
        assert gc.isenabled()  # paused too long: resumed although a batch is in hand
        with gc_paused():
            assert gc.isenabled()  # not paused again until no batch is in hand
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_disabled_elsewhere_stays_disabled() -> None:
    gc.disable()
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()
