"""The demo's window after a switch holds only transactions the promoted model answered."""

from __future__ import annotations

from shadow.app.demo.switch import only_new_from
from shadow.envelope import LiveScore
from shadow.kit.live_service import SyntheticRun, _count

OLD, NEW = LiveScore("fraud@1", 0.1, "pass"), LiveScore("fraud@2", 0.1, "pass")


def _served(order: list[tuple[LiveScore, int]]) -> SyntheticRun:
    run = SyntheticRun()
    for live, event_time in order:
        _count(run, live, event_time)
    return run


def test_a_request_the_old_model_answered_after_the_swap_is_left_out() -> None:
    # request threads overlap the swap: the old model answers t=6 after the new one's t=4
    run = _served([(OLD, 1), (OLD, 2), (NEW, 4), (OLD, 3), (OLD, 6), (NEW, 5), (NEW, 7)])
    start = only_new_from(run, "fraud@1", "fraud@2")
    assert start == 7
    old_times = [1, 2, 3, 6]
    assert all(t < start for t in old_times)


def test_a_clean_swap_starts_at_the_new_models_first_answer() -> None:
    run = _served([(OLD, 1), (OLD, 2), (NEW, 3), (NEW, 4)])
    assert only_new_from(run, "fraud@1", "fraud@2") == 3


def test_no_answer_from_the_new_model_means_no_window() -> None:
    assert only_new_from(_served([(OLD, 1)]), "fraud@1", "fraud@2") is None
    assert only_new_from(_served([(NEW, 9)]), "fraud@1", "fraud@2") == 9
