"""One-Euro filter over arrays of any shape (e.g. (21, 2) pixels or (21, 3) metres).

The One-Euro filter (Casiez, Roussel, Vogel, CHI 2012) is a first-order low-pass whose cutoff rises
with the signal's speed: slow motion is smoothed hard (little jitter), fast motion barely (little
lag). Every array element is filtered independently with its own speed estimate.

Latency, derived for the discrete filter used here. With sample period ``T`` and cutoff ``f_c``
the smoothing factor is ``a = T / (T + tau)``, ``tau = 1 / (2 pi f_c)``, and the update is
``y_n = a x_n + (1 - a) y_{n-1}``. Feed a ramp ``x_n = v n T`` and look for a steady state that
trails it by a constant delay ``D`` (``y_n = x_n - v D``): substituting gives
``D a = (1 - a) T``, i.e. ``D = T (1 - a) / a = tau``, exactly, whatever ``T``. On that ramp the
derivative low-pass converges to ``|v|``, so the cutoff is ``f_c = min_cutoff + beta |v|`` and the
added latency is::

    lag(v) = 1 / (2 pi (min_cutoff + beta |v|))      seconds;  lag(0) = 1 / (2 pi min_cutoff)

That is the filter's group delay at low frequency; a sinusoid of frequency ``f`` is delayed by
``atan(f / f_c) / (2 pi f)``, which is less than ``lag``. While the speed changes, the cutoff
follows the speed estimate (from consecutive raw samples) with the derivative filter's time
constant ``1 / (2 pi d_cutoff)``, so just after a hand starts moving the lag is still close to
``lag(0)``.

Timestamps (seconds) must increase. A stamp equal to or older than the last one is rejected with
``ValueError`` (state unchanged) when ``on_bad_stamp="raise"``, or restarts the filter from the new
sample when ``on_bad_stamp="reset"`` (e.g. a looping rosbag). A gap longer than ``max_gap_s`` also
restarts the filter, because the old state no longer says anything about the signal.

Non-finite input elements (a joint without a measurement) hold their previous estimate; an element
that has never been finite is output as NaN until its first finite sample.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from hand_perception.core.options import require_choice, require_range

_LOG = logging.getLogger(__name__)


@dataclass
class OneEuroOptions:
    """Parameters of :class:`OneEuroFilter`.

    ``min_cutoff`` (Hz) is the cutoff at rest; ``beta`` (Hz per unit/s of the signal, so 1/px for
    pixels or 1/m for metres) raises it with speed; ``d_cutoff`` (Hz) smooths the speed estimate.
    """

    min_cutoff: float = 1.0
    beta: float = 0.0
    d_cutoff: float = 1.0
    on_bad_stamp: str = "raise"
    max_gap_s: float = 1.0

    def __post_init__(self) -> None:
        require_range("min_cutoff", self.min_cutoff, 1e-6)
        require_range("beta", self.beta, 0.0)
        require_range("d_cutoff", self.d_cutoff, 1e-6)
        require_choice("on_bad_stamp", self.on_bad_stamp, ("raise", "reset"))
        require_range("max_gap_s", self.max_gap_s, 1e-6)


@dataclass
class OneEuroResult:
    """One filtered sample: ``value`` has the input's shape (float dtype of the input, or
    float64); ``cutoff_hz`` and ``latency_s`` are per element; ``restarted`` tells whether the
    filter (re)initialised on this sample."""

    value: np.ndarray
    cutoff_hz: np.ndarray
    latency_s: np.ndarray
    restarted: bool = False


def smoothing_factor(cutoff_hz: np.ndarray, dt_s: float) -> np.ndarray:
    """First-order low-pass factor ``a = dt / (dt + tau)``, ``tau = 1/(2 pi f_c)``."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz, dtype=np.float64))
    return dt_s / (dt_s + tau)


def one_euro_lag_s(min_cutoff: float, beta: float, speed: float = 0.0) -> float:
    """Steady-state lag (s) of the One-Euro filter on a signal moving at constant ``speed``
    (signal units/s): ``1 / (2 pi (min_cutoff + beta |speed|))``; see the module docstring."""
    return 1.0 / (2.0 * math.pi * (min_cutoff + beta * abs(speed)))


class OneEuroFilter:
    """Stateful One-Euro filter for arrays of a fixed shape; see the module docstring."""

    def __init__(self, options: Optional[OneEuroOptions] = None) -> None:
        self.options = options if options is not None else OneEuroOptions()
        if not isinstance(self.options, OneEuroOptions):
            raise TypeError(f"options must be OneEuroOptions, got {type(self.options).__name__}")
        self.reset()

    def reset(self) -> None:
        """Forget all state; the next sample initialises the filter."""
        self._x: Optional[np.ndarray] = None
        self._dx: Optional[np.ndarray] = None
        self._stamp: Optional[float] = None
        self._cutoff: Optional[np.ndarray] = None

    @property
    def initialised(self) -> bool:
        """Whether the filter holds a state."""
        return self._x is not None

    @property
    def current(self) -> Optional[np.ndarray]:
        """The current estimate (float64 copy, the input's shape), or None before any sample."""
        return None if self._x is None else self._x.copy()

    @property
    def last_stamp(self) -> Optional[float]:
        """Timestamp (s) of the last accepted sample, or None."""
        return self._stamp

    def latency_s(self) -> np.ndarray:
        """Per-element lag (s) added at the current cutoff, ``1/(2 pi f_c)``; empty if unset."""
        if self._cutoff is None:
            return np.zeros((0,), dtype=np.float64)
        return 1.0 / (2.0 * math.pi * self._cutoff)

    def process(self, value: np.ndarray, stamp_s: float) -> OneEuroResult:
        """Filter one sample ``value`` (any fixed shape, signal units) taken at ``stamp_s`` (s)."""
        x = np.asarray(value, dtype=np.float64)
        out_dtype = np.asarray(value).dtype if np.asarray(value).dtype.kind == "f" else np.float64
        stamp_s = float(stamp_s)
        if not math.isfinite(stamp_s):
            raise ValueError(f"stamp_s={stamp_s!r} is not finite")
        if self._x is not None and x.shape != self._x.shape:
            raise ValueError(f"value shape {x.shape} differs from the filter's {self._x.shape}")
        restarted = self._x is None or self._needs_restart(stamp_s)
        if restarted:
            self._start(x, stamp_s)
        else:
            self._step(x, stamp_s - self._stamp)
            self._stamp = stamp_s
        return OneEuroResult(value=self._x.astype(out_dtype), cutoff_hz=self._cutoff.copy(),
                             latency_s=self.latency_s(), restarted=restarted)

    def _needs_restart(self, stamp_s: float) -> bool:
        dt = stamp_s - self._stamp
        if dt <= 0.0:
            if self.options.on_bad_stamp == "raise":
                raise ValueError(
                    f"stamp {stamp_s!r} is not after the last one {self._stamp!r} (dt={dt!r} s)")
            _LOG.warning("stamp went back by %.6f s; restarting the One-Euro filter", -dt)
            return True
        return dt > self.options.max_gap_s

    def _start(self, x: np.ndarray, stamp_s: float) -> None:
        self._x = x.copy()
        self._raw = x.copy()
        self._raw_stamp = np.full(x.shape, stamp_s, dtype=np.float64)
        self._dx = np.zeros_like(x)
        self._cutoff = np.full(x.shape, self.options.min_cutoff, dtype=np.float64)
        self._stamp = stamp_s

    def _step(self, x: np.ndarray, dt: float) -> None:
        opts = self.options
        finite = np.isfinite(x)
        first = finite & ~np.isfinite(self._x)  # elements seen for the first time
        update = finite & ~first
        prev = np.where(update, self._x, 0.0)
        xu = np.where(update, x, 0.0)
        # Speed from consecutive raw samples (not from the filtered value, as the 2012 paper does)
        # so that on a ramp it equals the true speed and the lag formula above is exact.
        raw_dt = np.maximum(self._stamp + dt - self._raw_stamp, dt)
        dx = np.where(update, (xu - np.where(update, self._raw, 0.0)) / raw_dt, 0.0)
        dx_hat = self._dx + smoothing_factor(opts.d_cutoff, dt) * (dx - self._dx)
        self._dx = np.where(update, dx_hat, self._dx)
        cutoff = opts.min_cutoff + opts.beta * np.abs(self._dx)
        x_hat = prev + smoothing_factor(cutoff, dt) * (xu - prev)
        self._x = np.where(update, x_hat, np.where(first, x, self._x))
        self._raw = np.where(finite, x, self._raw)
        self._raw_stamp = np.where(finite, self._stamp + dt, self._raw_stamp)
        self._cutoff = np.where(update, cutoff, self._cutoff)
