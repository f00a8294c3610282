"""The simplex-constrained QP solver and the per-relation gradients of the adaptive selection."""

import itertools

import numpy as np
import pytest
import torch
from dcks.model import relation_gradients, selection_shift
from dcks.qp import project_simplex, qp_objective, solve_simplex_qp


def test_vertex_solution():
    # P = 0: minimising -c^T lam puts all weight on the largest cost
    lam = solve_simplex_qp(np.zeros((3, 3)), [1.0, 3.0, 2.0])
    np.testing.assert_allclose(lam, [0, 1, 0], atol=1e-12)


def test_interior_solution():
    # P = I, c = 0: the minimum-norm point of the simplex, uniform
    lam = solve_simplex_qp(np.eye(5), np.zeros(5))
    np.testing.assert_allclose(lam, np.full(5, 0.2), atol=1e-12)
    # P = diag(1, 2), c = 0: lam1 = 2/3, lam2 = 1/3 (KKT: lam1 = 2 lam2)
    np.testing.assert_allclose(solve_simplex_qp(np.diag([1.0, 2.0]), [0.0, 0.0]), [2 / 3, 1 / 3], atol=1e-12)


def test_ties_resolve_to_the_most_spread_optimum():
    # a flat objective over the whole simplex: every point is optimal; the solver returns the uniform one
    lam = solve_simplex_qp(np.zeros((4, 4)), np.ones(4))
    np.testing.assert_allclose(lam, np.full(4, 0.25), atol=1e-12)
    # two tied largest costs: the optimal edge, split evenly
    lam = solve_simplex_qp(np.zeros((3, 3)), [2.0, 2.0, 1.0])
    np.testing.assert_allclose(lam, [0.5, 0.5, 0.0], atol=1e-12)


def _grid(n, steps):
    for combo in itertools.product(range(steps + 1), repeat=n - 1):
        if sum(combo) <= steps:
            yield np.array([*combo, steps - sum(combo)], dtype=float) / steps


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_grid_on_random_problems(seed):
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(5, 7))
    P, c = g @ g.T, rng.normal(size=5) * 3
    lam = solve_simplex_qp(P, c)
    assert lam.min() >= 0 and lam.sum() == pytest.approx(1.0)
    best = min(qp_objective(P, c, x) for x in _grid(5, 20))
    assert qp_objective(P, c, lam) <= best + 1e-9
    # and no point near the solution does better (local optimality on the simplex)
    for _ in range(200):
        y = project_simplex(lam + rng.normal(scale=0.05, size=5))
        assert qp_objective(P, c, lam) <= qp_objective(P, c, y) + 1e-9


def test_large_n_falls_back_to_projected_gradient():
    rng = np.random.default_rng(3)
    g = rng.normal(size=(15, 20))
    P, c = g @ g.T, rng.normal(size=15)
    lam = solve_simplex_qp(P, c)
    assert lam.min() >= 0 and lam.sum() == pytest.approx(1.0)
    for _ in range(300):
        y = project_simplex(lam + rng.normal(scale=0.05, size=15))
        assert qp_objective(P, c, lam) <= qp_objective(P, c, y) + 1e-7


def test_rejects_bad_inputs():
    with pytest.raises(ValueError):
        solve_simplex_qp(np.eye(3), [1.0, 2.0])
    with pytest.raises(ValueError):
        solve_simplex_qp(np.eye(2), [np.nan, 1.0])


def test_closed_form_gradients_match_autograd_and_are_independent():
    torch.manual_seed(0)
    u, w, y = torch.randn(6, 5, 8), torch.randn(4, 8), torch.randint(0, 4, (6,))
    losses, grads = relation_gradients(u, w, y)
    for r in range(5):
        wr = w.clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(u[:, r] @ wr.T, y)
        (g,) = torch.autograd.grad(loss, wr)
        torch.testing.assert_close(grads[r], g, rtol=1e-5, atol=1e-6)
        assert losses[r].item() == pytest.approx(loss.item(), rel=1e-5)
    # the code's bug: .grad never zeroed, so g_r = g_1 + ... + g_r
    _, cum = relation_gradients(u, w, y, cumulative=True)
    torch.testing.assert_close(cum[1], grads[0] + grads[1])
    assert not torch.allclose(cum[1], grads[1])


def test_selection_shift_is_a_descent_direction_for_the_weighted_losses():
    torch.manual_seed(1)
    u, w, y = torch.randn(16, 5, 8), torch.randn(4, 8), torch.randint(0, 4, (16,))
    losses, grads = relation_gradients(u, w, y)
    delta, lam = selection_shift(losses, grads)
    assert delta.shape == (8,) and lam.sum().item() == pytest.approx(1.0)
    d = -(lam[:, None, None] * grads).sum(0)
    # moving W along d lowers the lam-weighted loss
    w2 = w + 1e-2 * d
    before = sum(lam[r] * torch.nn.functional.cross_entropy(u[:, r] @ w.T, y) for r in range(5))
    after = sum(lam[r] * torch.nn.functional.cross_entropy(u[:, r] @ w2.T, y) for r in range(5))
    assert after < before
