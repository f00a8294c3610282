"""``torch.compile`` over a model whose neuron runs the fused LIF autograd function (CPU).

Dynamo does not trace into the fused kernel (numba, called through ``.numpy()`` under a lock): it graph-breaks
around the neuron and runs it eagerly, compiling the layers on either side. The test checks that this runs and
gives the eager outputs and gradients. It uses the ``aot_eager`` backend (Dynamo + AOTAutograd, no C++ build) so it
stays well under 30 s; the default Inductor backend was checked by hand on the same model (same result, but its C++
compile of each graph takes minutes on the loaded 2-core machine).
"""

import pytest
import torch

from tenfold_core.spiking import LIF
from tenfold_core.spiking import functional as F


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(16, 32)
        self.lif = LIF()
        self.out = torch.nn.Linear(32, 3)

    def forward(self, x):
        return self.out(self.lif(self.fc(x))).mean(0)


@pytest.mark.slow
def test_torch_compile_runs_the_fused_neuron_and_matches_eager():
    if "fast" not in F.available_backends():
        pytest.skip("no fused CPU kernel")
    import torch._dynamo

    torch.manual_seed(0)
    model = _Net()
    x = torch.randn(4, 8, 16) * 2
    ref = model(x)
    ref.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    assert 0.01 < (model.lif(model.fc(x)) > 0).float().mean() < 0.9  # the neuron fires: gradients are real
    try:
        compiled = torch.compile(model, backend="aot_eager")
        out = compiled(x)
        out.sum().backward()
        out2 = compiled(x * 1.5)  # a second call reuses the compiled graphs
    finally:
        torch._dynamo.reset()
    torch.testing.assert_close(out, ref)
    for p, g in zip(model.parameters(), grads, strict=True):
        torch.testing.assert_close(p.grad, g)
    torch.testing.assert_close(out2, model(x * 1.5))
