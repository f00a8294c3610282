"""Surrogate gradients: Heaviside forward, closed-form backward, gradcheck of the smooth path."""

import math

import pytest
import torch

from tenfold_core.spiking import SURROGATES, heaviside, surrogate_grad

NAMES = sorted(SURROGATES)


def test_registry_names_and_default_alphas():
    expected = {
        "atan": 2.0,
        "sigmoid": 4.0,
        "piecewise_quadratic": 1.0,
        "soft_sign": 2.0,
        "erf": 2.0,
        "piecewise_exp": 1.0,
    }
    assert {k: v.default_alpha for k, v in SURROGATES.items()} == expected
    assert len({v.sid for v in SURROGATES.values()}) == len(SURROGATES)


@pytest.mark.parametrize("name", NAMES)
def test_forward_is_heaviside_ge_zero(name):
    x = torch.tensor([-1.0, -1e-7, 0.0, 1e-7, 3.0])
    assert heaviside(x, name).tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    assert heaviside(x.double(), name).dtype == torch.float64


def test_closed_forms_at_sample_points():
    x = torch.tensor([-0.7, -0.2, 0.0, 0.3, 1.1], dtype=torch.float64)
    a = 2.0
    atan = a / (2 * (1 + (math.pi / 2 * a * x) ** 2))
    torch.testing.assert_close(surrogate_grad(x, "atan"), atan)
    s = torch.sigmoid(4.0 * x)
    torch.testing.assert_close(surrogate_grad(x, "sigmoid"), 4.0 * s * (1 - s))
    torch.testing.assert_close(surrogate_grad(x, "piecewise_quadratic"), (1 - x.abs()).clamp_min(0))
    torch.testing.assert_close(surrogate_grad(x, "soft_sign"), 1 / (2 * a * (1 / a + x.abs()) ** 2))
    torch.testing.assert_close(surrogate_grad(x, "erf"), a / math.sqrt(math.pi) * torch.exp(-((a * x) ** 2)))
    # piecewise quadratic is exactly zero outside |x| <= 1/alpha
    assert surrogate_grad(torch.tensor([1.5, -2.0]), "piecewise_quadratic", alpha=1.0).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("name", NAMES)
def test_backward_uses_surrogate(name):
    x = torch.linspace(-1.5, 1.5, 31, dtype=torch.float64, requires_grad=True)
    g = torch.randn(31, dtype=torch.float64)
    (heaviside(x, name, alpha=1.7) * g).sum().backward()
    torch.testing.assert_close(x.grad, g * surrogate_grad(x.detach(), name, 1.7))


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_smooth_primitive(name):
    # spiking=False: the forward is the smooth primitive, whose true derivative must equal the surrogate.
    # Points stay away from the kinks of the piecewise surrogates (|x| = 1/alpha, x = 0).
    x = torch.tensor([-2.3, -0.61, -0.27, 0.13, 0.44, 0.77, 1.9], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: heaviside(t, name, alpha=1.3, spiking=False), (x,))
    y = heaviside(x.detach(), name, spiking=False)
    assert torch.all((y >= 0) & (y <= 1))


def test_unknown_surrogate_and_bad_alpha():
    with pytest.raises(ValueError, match="unknown surrogate"):
        heaviside(torch.zeros(2), "relu")
    with pytest.raises(ValueError, match="alpha"):
        heaviside(torch.zeros(2), "atan", alpha=0.0)
