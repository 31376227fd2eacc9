"""DeferredPalmSearch: what it expects one between-frames step to cost."""
import pytest

from hand_perception.core.detection import DeferredPalmSearch


class _Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


class _Search:
    """Stands in for a PalmSearch: each step takes the next of ``durations_s`` on ``clock``."""

    def __init__(self, clock: _Clock, durations_s) -> None:
        self._clock, self._durations = clock, list(durations_s)

    @property
    def done(self) -> bool:
        return not self._durations

    def step(self) -> None:
        self._clock.now_s += self._durations.pop(0)


def test_step_cost_is_the_shortest_recent_step_and_a_stalled_one_ages_out() -> None:
    clock = _Clock()
    deferred = DeferredPalmSearch(cost_window=5, cost_max_age_s=2.0, clock=clock)
    assert deferred.step_cost_s == 0.0
    deferred.start(_Search(clock, [0.5, 0.01, 0.02]), frame=1)
    assert deferred.step() == pytest.approx(0.5)  # stalled by the host
    assert deferred.step_cost_s == pytest.approx(0.5)
    assert deferred.step() == pytest.approx(0.01)
    assert deferred.step_cost_s == pytest.approx(0.01)  # one slow step does not rule

    clock.now_s += 10.0
    deferred.start(_Search(clock, [0.6, 0.01]), frame=40)
    deferred.step()
    assert deferred.step_cost_s == pytest.approx(0.6)  # the only recent step was stalled
    clock.now_s += 2.1  # no idle time looked long enough for another step meanwhile
    assert deferred.step_cost_s == 0.0  # so the next idle moment tries again
    assert deferred.step() == pytest.approx(0.01)
    assert deferred.step_cost_s == pytest.approx(0.01)


@pytest.mark.parametrize("kwargs", [{"cost_window": 0}, {"cost_max_age_s": -1.0},
                                    {"cost_max_age_s": float("nan")}])
def test_bad_cost_settings_are_refused(kwargs) -> None:
    with pytest.raises(ValueError):
        DeferredPalmSearch(**kwargs)
