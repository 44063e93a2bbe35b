"""Calibration against exactly known circuits: fit the device's map from exact to measured, then invert it.

Why affine: under a global depolarizing channel of strength 1 - lambda on the register, every expectation value
becomes ``lambda <O> + (1 - lambda) Tr(O) / 2^m``; for the fidelity circuits' projector that is
``F_meas = lambda F + (1 - lambda) / 2^n`` and for the decoded distribution ``p_meas = lambda p + (1 - lambda) / 2^n``.
Pauli twirling turns any gate noise into Pauli noise, and a deep circuit of random-looking gates scrambles Pauli
noise towards depolarizing; readout error adds a further roughly affine distortion. So the map is fitted as a
general affine ``measured = a * exact + b`` (the depolarizing case is ``b = (1 - a) / 2^n``, reported as a model
check) on K calibration images whose exact values the toolkit computes, run through the same transpiled circuit
in the same job, and inverted for the evaluated images. The evaluated images' exact values never enter.

Everything here is pure numpy: data in, fit and estimates out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qmae_qiskit.errors import QMAEError

MIN_POINTS = 3  # two parameters and at least one degree of freedom for the residual


@dataclass(frozen=True)
class AffineFit:
    """``measured = slope * exact + intercept`` with standard errors, their covariance and the fit's residual."""

    slope: float
    intercept: float
    slope_se: float
    intercept_se: float
    covariance: float  # cov(slope, intercept)
    residual_std: float
    points: int
    depolarizing_intercept: float | None = None  # (1 - slope) / 2^n, when the register size is known

    def invert(self, measured: np.ndarray, measured_std: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(estimates, their standard errors): ``(measured - b) / a``, errors by the delta method (fit + shots)."""
        m = np.asarray(measured, dtype=float)
        if abs(self.slope) < 1e-12:
            raise QMAEError("the calibration fit has slope 0: the device's output does not depend on the input")
        est = (m - self.intercept) / self.slope
        # d est / d a = -(m - b) / a^2 = -est / a ; d est / d b = -1 / a ; d est / d m = 1 / a
        var = (est**2 * self.slope_se**2 + self.intercept_se**2 + 2 * est * self.covariance) / self.slope**2
        if measured_std is not None:
            var = var + (np.asarray(measured_std, dtype=float) / self.slope) ** 2
        return est, np.sqrt(np.maximum(var, 0.0))

    def as_dict(self) -> dict:
        return {
            "model": "measured = slope * exact + intercept",
            "slope": self.slope,
            "intercept": self.intercept,
            "slope_se": self.slope_se,
            "intercept_se": self.intercept_se,
            "covariance": self.covariance,
            "residual_std": self.residual_std,
            "points": self.points,
            "depolarizing_intercept": self.depolarizing_intercept,
        }


def fit_affine(exact: np.ndarray, measured: np.ndarray, register_bits: int | None = None) -> AffineFit:
    """Ordinary least squares of ``measured`` on ``exact`` (both 1-D, one point per calibration value)."""
    x = np.asarray(exact, dtype=float).reshape(-1)
    y = np.asarray(measured, dtype=float).reshape(-1)
    if x.shape != y.shape:
        raise QMAEError(f"calibration needs as many measured as exact values, got {y.size} and {x.size}")
    if x.size < MIN_POINTS:
        raise QMAEError(
            f"an affine calibration needs at least {MIN_POINTS} calibration values, got {x.size}; "
            "pass more --calibration-images"
        )
    spread = x.max() - x.min()
    if not spread > 1e-9:
        raise QMAEError(
            "the calibration images all have the same exact value, so the slope cannot be fitted; "
            "use more (or other) calibration images"
        )
    X = np.stack([x, np.ones_like(x)], axis=1)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    dof = x.size - 2
    sigma2 = float(resid @ resid) / dof if dof > 0 else 0.0
    cov = sigma2 * np.linalg.inv(X.T @ X)
    depol = None if register_bits is None else float((1.0 - coef[0]) / 2**register_bits)
    return AffineFit(
        float(coef[0]),
        float(coef[1]),
        float(np.sqrt(cov[0, 0])),
        float(np.sqrt(cov[1, 1])),
        float(cov[0, 1]),
        float(np.sqrt(sigma2)),
        int(x.size),
        depol,
    )


def fit_distribution(exact: np.ndarray, measured: np.ndarray) -> AffineFit:
    """The affine map of outcome probabilities, pooled over every outcome of every calibration image (K, 2^n)."""
    e = np.asarray(exact, dtype=float)
    m = np.asarray(measured, dtype=float)
    if e.shape != m.shape or e.ndim != 2:
        raise QMAEError(f"calibration distributions must have equal shapes (K, 2^n), got {e.shape} and {m.shape}")
    bits = int(round(np.log2(e.shape[1])))
    return fit_affine(e.reshape(-1), m.reshape(-1), bits)


def invert_distribution(fit: AffineFit, measured: np.ndarray) -> np.ndarray:
    """``(p_meas - b) / a`` per outcome, then the nearest distribution (negative parts cut, renormalised)."""
    p = (np.asarray(measured, dtype=float) - fit.intercept) / fit.slope
    p = np.clip(p, 0.0, None)
    total = p.sum(axis=-1, keepdims=True)
    if np.any(total <= 0):
        raise QMAEError("a corrected distribution is all zero; the calibration fit does not describe these counts")
    return p / total


def leave_one_out_error(exact: np.ndarray, measured: np.ndarray) -> float:
    """Mean |inverted - exact| over the calibration points, each predicted from a fit to the others: a check of
    the affine model on held-out circuits, from calibration data alone."""
    x = np.asarray(exact, dtype=float)
    y = np.asarray(measured, dtype=float)
    if x.size <= MIN_POINTS:
        return float("nan")
    errs = []
    for k in range(x.size):
        keep = np.arange(x.size) != k
        fit = fit_affine(x[keep], y[keep])
        errs.append(abs(fit.invert(y[k : k + 1])[0][0] - x[k]))
    return float(np.mean(errs))
