"""A tiny solver for the adaptive-selection quadratic program over the probability simplex.

    minimise  1/2 lam^T P lam - c^T lam   subject to  lam >= 0,  sum(lam) = 1

(DCKS solves it with cvxopt once per batch; N = number of relations = 5.) For N <= 12 the solver enumerates the
active sets: on every support S it solves the equality-constrained KKT system by least squares, keeps the feasible
candidates and returns the one with the lowest objective. The problem is convex, so the global minimum is the KKT
point of some support; ties (a flat objective over a face) resolve to the candidate of smallest norm, i.e. the most
spread weights, deterministically. Larger N use accelerated projected gradient (FISTA) with the exact simplex
projection.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["solve_simplex_qp", "project_simplex", "qp_objective"]


def qp_objective(P: np.ndarray, c: np.ndarray, lam: np.ndarray) -> float:
    return float(0.5 * lam @ P @ lam - c @ lam)


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection onto {x >= 0, sum x = 1} (sort-based, exact)."""
    n = v.shape[0]
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    ind = np.arange(1, n + 1)
    rho = np.nonzero(u - css / ind > 0)[0][-1]
    theta = css[rho] / (rho + 1.0)
    return np.maximum(v - theta, 0.0)


def _enumerate(P: np.ndarray, c: np.ndarray, tol: float) -> np.ndarray:
    n = c.shape[0]
    scale = 1.0 + float(np.abs(P).max(initial=0.0)) + float(np.abs(c).max(initial=0.0))
    best, best_obj, best_norm = None, np.inf, np.inf
    for k in range(1, n + 1):
        for support in itertools.combinations(range(n), k):
            s = list(support)
            kkt = np.zeros((k + 1, k + 1))
            kkt[:k, :k] = P[np.ix_(s, s)]
            kkt[:k, k] = 1.0
            kkt[k, :k] = 1.0
            rhs = np.concatenate([c[s], [1.0]])
            sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0]
            if np.abs(kkt @ sol - rhs).max() > 1e-8 * scale:  # inconsistent system: no stationary point here
                continue
            lam_s = sol[:k]
            if lam_s.min() < -tol:
                continue
            lam = np.zeros(n)
            lam[s] = np.clip(lam_s, 0.0, None)
            lam /= lam.sum()
            obj = qp_objective(P, c, lam)
            norm = float(lam @ lam)
            if obj < best_obj - 1e-10 * scale or (
                abs(obj - best_obj) <= 1e-10 * scale and norm < best_norm - 1e-12
            ):
                best, best_obj, best_norm = lam, obj, norm
    assert best is not None  # every vertex is a feasible candidate
    return best


def _fista(P: np.ndarray, c: np.ndarray, iters: int = 2000) -> np.ndarray:
    n = c.shape[0]
    step = 1.0 / max(float(np.linalg.eigvalsh(P).max()), 1e-12)
    x = np.full(n, 1.0 / n)
    y, t = x.copy(), 1.0
    for _ in range(iters):
        x_new = project_simplex(y - step * (P @ y - c))
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        y = x_new + (t - 1) / t_new * (x_new - x)
        x, t = x_new, t_new
    return x


def solve_simplex_qp(P, c, tol: float = 1e-9) -> np.ndarray:
    """The minimiser ``lam`` (float64, ``lam >= 0``, ``sum = 1``) of ``1/2 lam^T P lam - c^T lam``; ``P`` PSD."""
    P = np.asarray(P, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64).reshape(-1)
    n = c.shape[0]
    if P.shape != (n, n):
        raise ValueError(f"P must be {n}x{n}, got {P.shape}")
    if not (np.isfinite(P).all() and np.isfinite(c).all()):
        raise ValueError("QP inputs must be finite")
    P = 0.5 * (P + P.T)
    if n == 1:
        return np.ones(1)
    return _enumerate(P, c, tol) if n <= 12 else _fista(P, c)
