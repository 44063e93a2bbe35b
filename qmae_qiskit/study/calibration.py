"""Calibration against exactly known circuits: fit the device's map from exact to measured, then invert it.

Fidelity. Why affine: under a global depolarizing channel of strength 1 - lambda on the register, every expectation
value becomes ``lambda <O> + (1 - lambda) Tr(O) / 2^m``; for the fidelity circuits' projector that is
``F_meas = lambda F + (1 - lambda) / 2^n`` and for the decoded distribution ``p_meas = lambda p + (1 - lambda) / 2^n``.
Pauli twirling turns any gate noise into Pauli noise, and a deep circuit of random-looking gates scrambles Pauli
noise towards depolarizing; readout error adds a further roughly affine distortion. So the map is fitted as a
general affine ``measured = a * exact + b`` (the depolarizing case is ``b = (1 - a) / 2^n``, reported as a model
check) on K calibration images whose exact values the toolkit computes, run through the same transpiled circuit
in the same job, and inverted for the evaluated images. The evaluated images' exact values never enter.

Per-image noise reference (``ref``). The affine map is one line for all images, but the noise an image's circuit
suffers depends on the states it passes through (amplitude damping and readout pull towards |0>, so an image's
weight matters): on the twins the points scatter about the line by more than shot noise. Every image (evaluated
and calibration) therefore also runs a reference circuit -- the same transpiled circuit loading the clean image in
place of the masked one, whose exact value ``F_ref`` the toolkit computes -- whose measured value ``m_ref`` carries
much of that image's own noise. The calibration images fit ``m = a F + g m_ref + h F_ref + c``, and each evaluated
image is inverted with its own reference.

Reconstruction. A noisy channel contracts every distribution towards its fixed point q: ``p_meas = a p + (1 - a) q``
(global depolarizing is the special case q uniform; T1 decay and asymmetric readout move q towards |0...0>). The
slope and the per-outcome intercepts ``b = (1 - a) q`` are fitted on the calibration images' distributions and
inverted, ``p = (p_meas - b) / a``, then cut at zero and renormalised.

Error bars. A calibration point is ``y_i = a x_i + b + eta_i + s_i``: ``eta_i`` the image's own departure from the
line (variance tau^2, the same for calibration and evaluated images, which are drawn alike) and ``s_i`` the shot
noise of its measurement (variance sigma_i^2: at least the binomial P(1 - P)/shots of the fidelity
projector, ``hardware.primitives.read_estimates``). The least-squares residual variance
estimates ``tau^2 + mean(sigma_cal^2)``, so ``tau^2 = max(0, residual^2 - mean(sigma_cal^2))``. An evaluated image's
estimate ``x = (y - b) / a`` then has, to first order (delta method),

    Var(x) = [ Var(b) + x^2 Var(a) + 2 x Cov(a, b)   (fit-parameter covariance)
             + tau^2                                  (scatter about the line)
             + sigma_new^2 ] / a^2                    (its own shot noise)

and its 95 % interval is ``x +- t_{0.975, K - p} sqrt(Var(x))`` (Student's t on the fit's K - p residual degrees of
freedom, because tau^2 and the covariance are estimated from K points). With a per-image reference the same holds
for ``m - g m_ref`` with shot variance ``sigma_m^2 + g^2 sigma_ref^2``. The three parts are returned separately, so a
budget can trade shots against calibration images.

Everything here is pure numpy: data in, fit and estimates out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from qmae_qiskit.errors import QMAEError

MIN_POINTS = 3  # two parameters and at least one degree of freedom for the residual


def t_quantile(dof: int | None, level: float = 0.95) -> float:
    """Half-width of a two-sided ``level`` interval in standard errors: Student's t on ``dof`` degrees of freedom
    (the normal quantile when ``dof`` is None: a standard error that was not estimated from a fit)."""
    q = 0.5 + level / 2
    return float(stats.norm.ppf(q) if dof is None or dof <= 0 else stats.t.ppf(q, dof))


def _shot_var(stds: np.ndarray | None) -> float | None:
    return None if stds is None else float(np.mean(np.asarray(stds, dtype=float) ** 2))


def _scatter_and_shot(residual_var: float, shot_var: float | None, new_shot_var: np.ndarray | float | None):
    """(tau^2, sigma_new^2): the residual splits into scatter and the calibration points' shot noise; without shot
    variances the whole residual is the new point's scatter (the old, shot-noise-included convention). tau^2 is
    cut at zero. ``residual^2 - mean(sigma_cal^2)`` is unbiased, but where it comes out negative it would make an
    image's interval narrower than its own shot noise: on the twin that gave studies whose 2-sigma intervals covered
    84 % of their images (fake_fez 8x8, 2026-12-04). Cut, the intervals lean wide on average (a synthetic device's
    95 % intervals cover 95-97 %, tests/test_study.py) and never fall below shot noise and the fit's own error."""
    if shot_var is None or new_shot_var is None:
        return residual_var, 0.0
    return max(residual_var - shot_var, 0.0), new_shot_var


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
    shot_var: float | None = None  # mean shot variance of the calibration points, when the Estimator reported it

    @property
    def dof(self) -> int:
        return self.points - 2

    def invert_parts(
        self, measured: np.ndarray, measured_std: np.ndarray | None = None
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(estimates ``(measured - b) / a``, their variance in three parts: ``fit`` (parameter covariance, delta
        method), ``scatter`` (tau^2 / a^2) and ``shot`` (sigma_new^2 / a^2)); see the module's derivation."""
        m = np.asarray(measured, dtype=float)
        if abs(self.slope) < 1e-12:
            raise QMAEError("the calibration fit has slope 0: the device's output does not depend on the input")
        est = (m - self.intercept) / self.slope
        a2 = self.slope**2
        # d est / d a = -(m - b) / a^2 = -est / a ; d est / d b = -1 / a ; d est / d m = 1 / a
        fit = (est**2 * self.slope_se**2 + self.intercept_se**2 + 2 * est * self.covariance) / a2
        new = None if measured_std is None else np.asarray(measured_std, dtype=float) ** 2
        tau2, shot = _scatter_and_shot(self.residual_std**2, self.shot_var, new)
        ones = np.ones_like(est)
        return est, {"fit": np.maximum(fit, 0.0), "scatter": tau2 / a2 * ones, "shot": shot / a2 * ones}

    def invert(self, measured: np.ndarray, measured_std: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(estimates, their standard errors): the inverse-regression prediction error, all three parts."""
        est, parts = self.invert_parts(measured, measured_std)
        return est, np.sqrt(np.maximum(sum(parts.values()), 0.0))

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
            "shot_std": None if self.shot_var is None else float(np.sqrt(self.shot_var)),
            "scatter_std": float(np.sqrt(_scatter_and_shot(self.residual_std**2, self.shot_var, 0.0)[0])),
        }


def fit_affine(
    exact: np.ndarray, measured: np.ndarray, register_bits: int | None = None, measured_std: np.ndarray | None = None
) -> AffineFit:
    """Ordinary least squares of ``measured`` on ``exact`` (both 1-D, one point per calibration value);
    ``measured_std`` (the shot noise of each point) lets the residual be split into scatter and shot noise."""
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
        _shot_var(measured_std),
    )


@dataclass(frozen=True)
class ReferenceFit:
    """``m = a F + g m_ref + h F_ref + c`` fitted on the calibration images (each with its reference circuit):
    the reference's measured value carries the image-dependent part of the noise, and the fit learns how much of
    it transfers (a control variate), instead of assuming the two circuits share one slope."""

    coef: np.ndarray  # a, g, h, c
    covariance: np.ndarray
    residual_std: float
    points: int
    shot_var: float | None = None  # mean of sigma_m^2 + g^2 sigma_ref^2 over the calibration images

    @property
    def dof(self) -> int:
        return self.points - 4

    def invert_parts(
        self,
        measured: np.ndarray,
        reference: np.ndarray,
        reference_exact: np.ndarray,
        stds: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(estimates ``F = (m - g m_ref - h F_ref - c) / a``, their variance parts ``fit``, ``scatter``, ``shot``);
        ``stds`` are the shot standard errors of ``m`` and ``m_ref``."""
        a, g, h, c = self.coef
        if abs(a) < 1e-12:
            raise QMAEError("the reference calibration has slope 0: the device's output does not depend on the image")
        m, mr, fr = (np.asarray(x, dtype=float) for x in (measured, reference, reference_exact))
        est = (m - g * mr - h * fr - c) / a
        grad = np.stack([-est / a, -mr / a, -fr / a, -np.ones_like(est) / a], axis=1)  # d est / d (a, g, h, c)
        fit = np.einsum("ni,ij,nj->n", grad, self.covariance, grad)
        new = None if stds is None else np.asarray(stds[0], float) ** 2 + g**2 * np.asarray(stds[1], float) ** 2
        tau2, shot = _scatter_and_shot(self.residual_std**2, self.shot_var, new)
        ones = np.ones_like(est)
        return est, {"fit": np.maximum(fit, 0.0), "scatter": tau2 / a**2 * ones, "shot": shot / a**2 * ones}

    def invert(
        self,
        measured: np.ndarray,
        reference: np.ndarray,
        reference_exact: np.ndarray,
        stds: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(estimates, prediction standard errors), all three parts."""
        est, parts = self.invert_parts(measured, reference, reference_exact, stds)
        return est, np.sqrt(np.maximum(sum(parts.values()), 0.0))

    def as_dict(self) -> dict:
        a, g, h, c = self.coef
        return {
            "model": "m = a F + g m_ref + h F_ref + c",
            "a": float(a),
            "g": float(g),
            "h": float(h),
            "c": float(c),
            "se": np.sqrt(np.diag(self.covariance)).tolist(),
            "residual_std": self.residual_std,
            "points": self.points,
            "shot_std": None if self.shot_var is None else float(np.sqrt(self.shot_var)),
            "scatter_std": float(np.sqrt(_scatter_and_shot(self.residual_std**2, self.shot_var, 0.0)[0])),
        }


def fit_reference(
    exact: np.ndarray,
    measured: np.ndarray,
    reference: np.ndarray,
    reference_exact: np.ndarray,
    stds: tuple[np.ndarray, np.ndarray] | None = None,
) -> ReferenceFit:
    """Least squares of the calibration images' measured values on their exact values and their references';
    ``stds`` (shot standard errors of measured and reference) split the residual into scatter and shot noise."""
    F, m, mr, fr = (np.asarray(x, dtype=float).reshape(-1) for x in (exact, measured, reference, reference_exact))
    if not F.size == m.size == mr.size == fr.size:
        raise QMAEError("the reference calibration needs one measured, reference and exact value per image")
    if F.size < 5:
        raise QMAEError(
            f"the reference calibration fits four parameters and needs at least 5 calibration images, "
            f"got {F.size}; pass more --calibration-images"
        )
    X = np.stack([F, mr, fr, np.ones_like(F)], axis=1)
    coef, *_ = np.linalg.lstsq(X, m, rcond=None)
    resid = m - X @ coef
    dof = F.size - 4
    sigma2 = float(resid @ resid) / dof
    cov = sigma2 * np.linalg.pinv(X.T @ X)
    shot = None
    if stds is not None:
        shot = float(np.mean(np.asarray(stds[0], float) ** 2 + coef[1] ** 2 * np.asarray(stds[1], float) ** 2))
    return ReferenceFit(coef, cov, float(np.sqrt(sigma2)), int(F.size), shot)


@dataclass(frozen=True)
class FixedPointFit:
    """``p_meas = slope * p + intercepts`` (intercepts = (1 - slope) q, q the noise's fixed-point distribution)."""

    slope: float
    intercepts: np.ndarray
    residual_std: float
    points: int

    @property
    def fixed_point(self) -> np.ndarray:
        return self.intercepts / max(1e-12, 1.0 - self.slope)

    def as_dict(self) -> dict:
        q = self.fixed_point
        uniform = np.full_like(q, 1.0 / q.size)
        return {
            "model": "p_measured = slope * p_exact + (1 - slope) * q",
            "slope": self.slope,
            "residual_std": self.residual_std,
            "points": self.points,
            "fixed_point_distance_from_uniform": float(0.5 * np.abs(q - uniform).sum()),
            "fixed_point_top": {int(i): float(q[i]) for i in np.argsort(q)[::-1][:4]},
        }


def fit_fixed_point(exact: np.ndarray, measured: np.ndarray) -> FixedPointFit:
    """Least squares of every outcome's measured probability on its exact one: one shared slope, one intercept per
    outcome (for a fixed slope the best intercepts are the per-outcome mean residuals)."""
    e = np.asarray(exact, dtype=float)
    m = np.asarray(measured, dtype=float)
    if e.shape != m.shape or e.ndim != 2:
        raise QMAEError(f"calibration distributions must have equal shapes (K, 2^n), got {e.shape} and {m.shape}")
    if e.shape[0] < MIN_POINTS:
        raise QMAEError(
            f"the reconstruction calibration needs at least {MIN_POINTS} calibration images, got "
            f"{e.shape[0]}; pass more --calibration-images"
        )
    ec, mc = e - e.mean(0), m - m.mean(0)
    denom = float((ec * ec).sum())
    if denom <= 1e-15:
        raise QMAEError("the calibration images all decode to the same distribution; use other calibration images")
    slope = float((ec * mc).sum()) / denom
    intercepts = m.mean(0) - slope * e.mean(0)
    resid = m - slope * e - intercepts
    dof = max(1, e.size - e.shape[1] - 1)
    return FixedPointFit(slope, intercepts, float(np.sqrt((resid * resid).sum() / dof)), int(e.shape[0]))


def invert_fixed_point(fit: FixedPointFit, measured: np.ndarray) -> np.ndarray:
    """``(p_meas - b) / a``, cut at zero and renormalised (the nearest distribution in the simplex's direction)."""
    if abs(fit.slope) < 1e-12:
        raise QMAEError("the reconstruction calibration has slope 0: the counts do not depend on the image")
    p = np.clip((np.asarray(measured, dtype=float) - fit.intercepts) / fit.slope, 0.0, None)
    total = p.sum(axis=-1, keepdims=True)
    if np.any(total <= 0):
        raise QMAEError("a corrected distribution is all zero; the calibration does not describe these counts")
    return p / total


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
