"""Tests of the One-Euro filter: measured lag, jitter reduction, stamps, NaN handling, options."""
import math

import numpy as np
import pytest

from hand_perception.core.filters import (OneEuroFilter, OneEuroOptions, one_euro_lag_s,
                                          smoothing_factor)
from hand_perception.core.options import options_from_mapping, options_from_yaml


def _run(filt, xs, ts):
    return np.array([filt.process(x, t).value for x, t in zip(xs, ts)])


@pytest.mark.parametrize("beta", [0.0, 0.05])
def test_ramp_lag_matches_stated_latency(beta):
    speed = 200.0  # units/s
    ts = np.arange(0, 3.0, 1 / 60.0)
    filt = OneEuroFilter(OneEuroOptions(min_cutoff=1.0, beta=beta, d_cutoff=1.0))
    ys = _run(filt, speed * ts, ts)
    measured_lag = (speed * ts[-1] - ys[-1]) / speed
    stated = one_euro_lag_s(1.0, beta, speed)
    assert measured_lag == pytest.approx(stated, rel=0.02)
    assert float(filt.latency_s()) == pytest.approx(stated, rel=0.02)


def test_lag_is_independent_of_frame_rate():
    lags = []
    for rate in (30.0, 240.0):
        ts = np.arange(0, 4.0, 1 / rate)
        ys = _run(OneEuroFilter(OneEuroOptions(min_cutoff=2.0)), ts, ts)
        lags.append(ts[-1] - ys[-1])
    assert lags[0] == pytest.approx(lags[1], rel=0.01)
    assert lags[0] == pytest.approx(1 / (4 * math.pi), rel=0.01)


def test_noisy_sinusoid_jitter_reduced_with_small_lag():
    rng = np.random.default_rng(0)
    ts = np.arange(0, 10.0, 1 / 60.0)
    truth = 50.0 * np.sin(2 * math.pi * 0.5 * ts)  # 0.5 Hz hand-like motion, px
    noisy = truth + rng.normal(0, 2.0, ts.shape)
    ys = _run(OneEuroFilter(OneEuroOptions(min_cutoff=1.0, beta=0.02, d_cutoff=1.0)), noisy, ts)
    keep = ts > 1.0
    # Jitter: sample-to-sample roughness, which the sinusoid barely contributes to.
    rough_in = np.std(np.diff(noisy[keep], 2))
    rough_out = np.std(np.diff(ys[keep], 2))
    assert rough_out < rough_in / 4
    # Lag: the delay that best aligns output with truth, from cross-correlation at 1/60 s steps.
    shifts = np.arange(0, 30)
    errs = [np.mean((ys[keep][s:] - truth[keep][:len(truth[keep]) - s]) ** 2) for s in shifts]
    lag = shifts[int(np.argmin(errs))] / 60.0
    assert lag <= one_euro_lag_s(1.0, 0.02, 0.0) + 1e-9  # never worse than the at-rest bound
    assert lag < 0.06
    assert math.sqrt(min(errs)) < 2.0  # better than the raw noise once aligned


def test_array_elements_are_independent():
    filt = OneEuroFilter(OneEuroOptions(min_cutoff=1.0, beta=0.1))
    ts = np.arange(0, 1.0, 0.01)
    xs = np.zeros((len(ts), 21, 3), dtype=np.float32)
    xs[:, 5, 1] = 100 * ts  # only one element moves
    out = _run(filt, xs, ts)
    assert out.dtype == np.float32 and out.shape == xs.shape
    assert np.all(out[:, np.arange(21) != 5] == 0)
    cut = filt.latency_s()
    assert cut.shape == (21, 3) and cut[5, 1] < cut[0, 0]


def test_out_of_order_stamp_raises_and_keeps_state():
    filt = OneEuroFilter(OneEuroOptions())
    filt.process(np.array([0.0]), 1.0)
    before = filt.process(np.array([1.0]), 1.1).value
    for bad in (1.1, 1.05):
        with pytest.raises(ValueError, match="not after"):
            filt.process(np.array([100.0]), bad)
    assert filt.last_stamp == 1.1
    after = filt.process(np.array([1.0]), 1.2).value
    assert after[0] > before[0] and after[0] < 1.0


def test_out_of_order_stamp_resets_when_asked():
    filt = OneEuroFilter(OneEuroOptions(on_bad_stamp="reset"))
    filt.process(np.array([0.0]), 5.0)
    res = filt.process(np.array([7.0]), 1.0)
    assert res.restarted and res.value[0] == 7.0


def test_long_gap_restarts():
    filt = OneEuroFilter(OneEuroOptions(max_gap_s=0.5))
    filt.process(np.array([0.0]), 0.0)
    res = filt.process(np.array([10.0]), 2.0)
    assert res.restarted and res.value[0] == 10.0


def test_nan_elements_hold_previous_estimate():
    filt = OneEuroFilter(OneEuroOptions())
    filt.process(np.array([np.nan, 1.0]), 0.0)
    out = filt.process(np.array([2.0, np.nan]), 0.1).value
    assert out[0] == 2.0 and out[1] == 1.0  # first finite sample initialises; NaN holds
    out = filt.process(np.array([3.0, 5.0]), 0.2).value
    assert 2.0 < out[0] < 3.0 and 1.0 < out[1] < 5.0


def test_shape_change_and_bad_stamp_rejected():
    filt = OneEuroFilter()
    filt.process(np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="shape"):
        filt.process(np.zeros(4), 0.1)
    with pytest.raises(ValueError, match="finite"):
        filt.process(np.zeros(3), float("nan"))


def test_smoothing_factor_limits():
    assert smoothing_factor(1.0, 1e9) == pytest.approx(1.0)
    assert smoothing_factor(1.0, 1e-9) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("bad", [{"min_cutoff": 0.0}, {"beta": -1.0}, {"d_cutoff": "x"},
                                 {"on_bad_stamp": "ignore"}, {"max_gap_s": float("inf")}])
def test_options_validation(bad):
    with pytest.raises((ValueError, TypeError), match=next(iter(bad))):
        options_from_mapping(OneEuroOptions, bad)


def test_options_from_yaml(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text("filt:\n  min_cutoff: 2.5\n  beta: 0.1\n")
    opts = options_from_yaml(OneEuroOptions, path, "filt")
    assert opts.min_cutoff == 2.5 and opts.beta == 0.1
    with pytest.raises(ValueError, match="typo"):
        options_from_mapping(OneEuroOptions, {"typo": 1})
