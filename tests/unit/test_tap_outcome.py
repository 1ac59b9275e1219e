"""The verdict of a tap run (exit 1 when nothing is delivered or too much is lost) and the
librdkafka chatter it holds back; the extras a missing module points to."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import pytest

from shadow.app.cli.tap_outcome import HeldBack, check_delivery
from shadow.errors import DeliveryFailed
from shadow.extras import EXTRA_OF, missing_extra


def stats(delivered: int, failed: int = 0, dropped: int = 0, rejected: int = 0) -> dict:
    enqueued = delivered + failed
    return {
        "offered": enqueued + dropped + rejected + 50,
        "sampled_out": 50,
        "enqueued": enqueued,
        "dropped": dropped,
        "rejected": rejected,
        "failed": failed,
        "delivered": delivered,
        "in_flight": 0,
    }


def test_a_run_that_delivered_everything_passes() -> None:
    check_delivery("t", stats(100), 0.0, HeldBack())


@pytest.mark.parametrize(
    ("run", "max_failed", "fails"),
    [
        (stats(99, failed=1), 0.01, False),  # 1 % lost, 1 % allowed
        (stats(98, failed=2), 0.01, True),
        (stats(98, dropped=2), 0.01, True),  # dropped counts as lost
        (stats(98, rejected=2), 0.01, True),
        (stats(100, dropped=1), 0.0, True),
    ],
)
def test_losses_past_the_threshold_fail(run: dict, max_failed: float, fails: bool) -> None:
    if fails:
        with pytest.raises(DeliveryFailed, match="more than --max-failed"):
            check_delivery("t", run, max_failed, HeldBack())
    else:
        check_delivery("t", run, max_failed, HeldBack())


def test_nothing_delivered_fails_whatever_the_threshold_and_quotes_the_broker() -> None:
    with HeldBack() as held:
        logging.getLogger("shadow.librdkafka").error("FAIL connect refused")
        logging.getLogger("producers.tap").warning(
            "tap record not delivered: timed out (3 similar held back)"
        )
        logging.getLogger("producers.tap.librdkafka").warning("GETPID retrying")
    with pytest.raises(DeliveryFailed) as caught:
        check_delivery("txns", stats(0, failed=40), 1.0, held)
    assert held.count == 3
    assert str(caught.value) == (
        "tap to txns: nothing delivered: 40 of 40 sampled transactions lost "
        "(broker said: tap record not delivered: timed out)"
    )


def test_nothing_sampled_fails_and_says_so() -> None:
    with pytest.raises(DeliveryFailed, match="no transaction of 50 offered was sampled"):
        check_delivery("t", stats(0), 0.5, HeldBack())


def test_held_back_lines_are_not_printed_and_logging_is_restored(
    capsys: pytest.CaptureFixture[str],
) -> None:
    chatty = logging.getLogger("shadow.librdkafka")
    printer = logging.getLogger("shadow")  # as configure_logging's root handler would print
    printer.addHandler(logging.StreamHandler())
    try:
        with HeldBack():
            for _ in range(200):
                chatty.error("Connect to ipv4#127.0.0.1:1 failed")
        assert capsys.readouterr().err == ""
        assert chatty.propagate is True
        chatty.error("after")
        assert "after" in capsys.readouterr().err
    finally:
        printer.handlers.clear()


def test_every_extra_a_missing_module_points_to_exists() -> None:
    spec = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    extras = spec["project"]["optional-dependencies"]
    assert set(EXTRA_OF.values()) <= set(extras)
    hint = missing_extra(ModuleNotFoundError("No module named 'duckdb'", name="duckdb"))
    assert hint is not None and "pip install 'shadow-scoring[analysis]'" in str(hint)
    assert missing_extra(ModuleNotFoundError("x", name="shadow.nonexistent")) is None
