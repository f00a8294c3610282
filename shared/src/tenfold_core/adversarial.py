"""Embedding-space adversarial training (PGD-K, FreeLB, FreeLB++) for any Hugging Face encoder.

The perturbation ``delta`` is added to the *word* embeddings (the output of ``model.get_input_embeddings()``) and the
model is run with ``inputs_embeds=`` so position / token-type embeddings are added after it, as in FreeLB and
TextDefender. Per batch (``B`` examples, ``L`` tokens, ``D`` dims; ``mask`` = attention mask):

- init: ``delta_0 = U(-1, 1) * mask * init_mag / sqrt(len * D)`` (L2; ``init_mag = 0`` starts at zero; ``linf``:
  ``U(-init_mag, init_mag)``);
- ascent: ``g_t = d L(E(x) + delta_t) / d delta``; ``delta_{t+1} = delta_t + step_size * g_t / ||g_t||`` (L2 over
  the whole example; ``linf``: the sign), then projected onto ``||delta|| <= max_norm`` when ``max_norm > 0``
  (``max_norm = 0`` means **no projection**: FreeLB++);
- **FreeLB** (``method="freelb"``): the parameter gradient is the mean of the ``K`` ascent steps' gradients (one
  optimizer step per batch; ``K`` forward and ``K`` backward passes);
- **PGD-K** (``method="pgd"``): ``K`` ascent steps on delta only, then the parameter gradient of the loss at the final
  perturbation (``K + 1`` forward / backward passes; trains on the adversarial batch only, as TextDefender does).

Everything runs inside an ordinary (automatic-optimisation) ``training_step``: the per-step gradients are taken with
``torch.autograd.grad`` and handed to Lightning as a *surrogate* loss whose value is the mean adversarial loss and
whose gradient is exactly the accumulated parameter gradient (:func:`surrogate_loss`). So gradient clipping,
accumulation, mixed precision and DDP (one all-reduce per batch, through Lightning's one backward) work unchanged,
and only one step's graph is alive at a time. Typical use::

    adv = EmbeddingAdversary("freelb", steps=30, init_mag=0.05, step_size=0.03, max_norm=0.0)   # FreeLB++

    def training_step(self, batch, batch_idx):
        def loss_fn(embeds):
            out = self.model(inputs_embeds=embeds, attention_mask=batch["attention_mask"])
            return F.cross_entropy(out.logits, batch["labels"])
        return adv.loss(self.model, loss_fn, batch["input_ids"], batch["attention_mask"])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from tenfold_core.errors import ConfigError

__all__ = [
    "EmbeddingAdversary",
    "AdversarialResult",
    "input_embedding_layer",
    "embed_inputs",
    "init_delta",
    "ascent_step",
    "project",
    "surrogate_loss",
    "adversarial_gradients",
]

METHODS = ("freelb", "pgd")
NORMS = ("l2", "linf")


def input_embedding_layer(model: nn.Module) -> nn.Module:
    """The word-embedding layer of ``model`` (``get_input_embeddings()`` of a transformers model, or of its
    ``encoder`` attribute for wrappers such as an encoder + head)."""
    for m in (model, getattr(model, "encoder", None)):
        if m is not None and hasattr(m, "get_input_embeddings"):
            emb = m.get_input_embeddings()
            if emb is not None:
                return emb
    raise ConfigError(
        f"{type(model).__name__}: no input embeddings (expected a transformers model with get_input_embeddings())"
    )


def embed_inputs(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """Word embeddings ``[B, L, D]`` of ``input_ids`` (feed them back with ``inputs_embeds=``)."""
    return input_embedding_layer(model)(input_ids)


def _per_example(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


def init_delta(
    embeds: torch.Tensor,
    mask: torch.Tensor,
    init_mag: float,
    norm: str = "l2",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The initial perturbation (zero where ``mask`` is 0). L2: ``U(-1,1) * init_mag / sqrt(len * D)`` per example
    (``len`` = unmasked tokens), as FreeLB/TextDefender; ``linf``: ``U(-init_mag, init_mag)``."""
    m = mask.to(embeds.dtype).unsqueeze(-1)
    if init_mag <= 0:
        return torch.zeros_like(embeds)
    u = torch.rand(
        embeds.shape, generator=generator, device="cpu" if generator is not None else embeds.device
    )
    u = (2 * u - 1).to(embeds.device, embeds.dtype) * m
    if norm == "l2":
        dims = mask.sum(1).to(embeds.dtype).clamp_min(1) * embeds.shape[-1]
        return u * (init_mag / dims.sqrt()).view(-1, 1, 1)
    return u * init_mag


def ascent_step(delta: torch.Tensor, grad: torch.Tensor, step_size: float, norm: str = "l2") -> torch.Tensor:
    """``delta + step_size * grad / ||grad||`` (L2 over each example) or ``+ step_size * sign(grad)`` (linf)."""
    if norm == "l2":
        denom = _per_example(grad).norm(dim=1).clamp_min(1e-8).view(-1, *([1] * (grad.ndim - 1)))
        return delta + step_size * grad / denom
    return delta + step_size * grad.sign()


def project(delta: torch.Tensor, max_norm: float, norm: str = "l2") -> torch.Tensor:
    """Project each example's ``delta`` onto the ball ``||delta|| <= max_norm``; ``max_norm <= 0``: unchanged (no
    projection, FreeLB++)."""
    if max_norm <= 0:
        return delta
    if norm == "l2":
        n = _per_example(delta).norm(dim=1).view(-1, *([1] * (delta.ndim - 1)))
        scale = torch.where(n > max_norm, max_norm / n.clamp_min(1e-12), torch.ones_like(n))
        return delta * scale
    return delta.clamp(-max_norm, max_norm)


def surrogate_loss(value: torch.Tensor, params: Sequence[nn.Parameter], grads: Sequence[torch.Tensor | None]):
    """A scalar whose value is ``value`` (detached) and whose gradient w.r.t. ``params`` is ``grads``: hand it to
    Lightning's backward so the optimizer, clipping, AMP scaling and DDP all see the accumulated gradient."""
    out = value.detach().clone()
    for p, g in zip(params, grads):
        if g is not None:
            dot = (p * g.detach().to(p.dtype)).sum()
            out = out + dot - dot.detach()
    return out


@dataclass
class AdversarialResult:
    loss: (
        torch.Tensor
    )  # mean adversarial loss over the steps that contribute to the parameter gradient (detached)
    grads: list[torch.Tensor | None]
    delta: torch.Tensor  # final perturbation (detached)
    losses: list[float]  # loss of every forward pass, in order
    delta_norms: list[float]  # mean per-example L2 norm of delta after each ascent step


def adversarial_gradients(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    embed_fn: Callable[[], torch.Tensor],
    mask: torch.Tensor,
    params: Sequence[nn.Parameter],
    *,
    method: str = "freelb",
    steps: int = 3,
    init_mag: float = 0.08,
    step_size: float = 0.04,
    max_norm: float = 0.0,
    norm: str = "l2",
    generator: torch.Generator | None = None,
    on_pass: Callable[[str], None] | None = None,
) -> AdversarialResult:
    """Run the ascent and return the parameter gradient of FreeLB (mean over ``steps``) or PGD-K (at the final
    delta). ``embed_fn()`` gives fresh word embeddings (with their graph to the embedding matrix); ``loss_fn(embeds)``
    the scalar loss. ``on_pass("forward"/"backward")`` is called once per pass (for counting)."""
    if method not in METHODS:
        raise ConfigError(f"adversarial method must be one of {METHODS}, got {method!r}")
    if norm not in NORMS:
        raise ConfigError(f"adversarial norm must be one of {NORMS}, got {norm!r}")
    if steps < 1:
        raise ConfigError(f"adversarial steps must be >= 1, got {steps}")
    params = [p for p in params if p.requires_grad]
    tick = on_pass or (lambda kind: None)
    embeds = embed_fn()
    delta = init_delta(embeds.detach(), mask, init_mag, norm, generator)
    delta = project(delta, max_norm, norm)
    acc: list[torch.Tensor | None] = [None] * len(params)
    losses, norms, total = [], [], None
    fwd_steps = steps if method == "freelb" else steps + 1
    for t in range(fwd_steps):
        delta = delta.detach().requires_grad_(True)
        if t > 0:
            embeds = embed_fn()  # the previous step's graph was freed by its backward
        loss = loss_fn(embeds + delta)
        tick("forward")
        losses.append(float(loss.detach()))
        last = t == fwd_steps - 1
        want_params = method == "freelb" or last
        inputs = ([delta] if not last else []) + (params if want_params else [])
        grads = torch.autograd.grad(loss, inputs, allow_unused=True)
        tick("backward")
        if want_params:
            pg = grads[-len(params) :] if params else ()
            scale = 1.0 / steps if method == "freelb" else 1.0
            for j, g in enumerate(pg):
                if g is not None:
                    acc[j] = g * scale if acc[j] is None else acc[j] + g * scale
            total = loss.detach() if total is None else total + loss.detach()
        if last:
            break
        g_delta = grads[0]
        if g_delta is None:
            raise ConfigError("adversarial training: the loss does not depend on the input embeddings")
        delta = project(ascent_step(delta.detach(), g_delta.detach(), step_size, norm), max_norm, norm)
        delta = delta * mask.to(delta.dtype).unsqueeze(-1)
        norms.append(float(_per_example(delta).norm(dim=1).mean()))
    mean_loss = total / (steps if method == "freelb" else 1)
    return AdversarialResult(mean_loss, acc, delta.detach(), losses, norms)


class EmbeddingAdversary:
    """Settings of one embedding-space adversarial trainer; :meth:`loss` returns the scalar a ``training_step``
    returns. ``method``: "freelb" (FreeLB; FreeLB++ = many ``steps`` and ``max_norm = 0``) or "pgd" (PGD-K).

    Counts every pass in ``forward_passes`` / ``backward_passes`` and keeps the last :class:`AdversarialResult`.
    """

    def __init__(
        self,
        method: str = "freelb",
        steps: int = 3,
        init_mag: float = 0.08,
        step_size: float = 0.04,
        max_norm: float = 0.0,
        norm: str = "l2",
    ):
        if method not in METHODS:
            raise ConfigError(f"adversarial method must be one of {METHODS}, got {method!r}")
        if norm not in NORMS:
            raise ConfigError(f"adversarial norm must be one of {NORMS}, got {norm!r}")
        if steps < 1 or init_mag < 0 or step_size < 0 or max_norm < 0 or not math.isfinite(step_size):
            raise ConfigError("adversarial: steps >= 1 and init_mag, step_size, max_norm >= 0 are required")
        self.method, self.steps, self.init_mag = method, int(steps), float(init_mag)
        self.step_size, self.max_norm, self.norm = float(step_size), float(max_norm), norm
        self.forward_passes = 0
        self.backward_passes = 0
        self.last: AdversarialResult | None = None

    def _tick(self, kind: str) -> None:
        if kind == "forward":
            self.forward_passes += 1
        else:
            self.backward_passes += 1

    def gradients(
        self, model: nn.Module, loss_fn, input_ids, attention_mask, params=None
    ) -> AdversarialResult:
        params = list(params if params is not None else model.parameters())
        res = adversarial_gradients(
            loss_fn, lambda: embed_inputs(model, input_ids), attention_mask, params,
            method=self.method, steps=self.steps, init_mag=self.init_mag, step_size=self.step_size,
            max_norm=self.max_norm, norm=self.norm, on_pass=self._tick,
        )  # fmt: skip
        self.last = res
        return res

    def loss(self, model: nn.Module, loss_fn, input_ids, attention_mask, params=None) -> torch.Tensor:
        """The surrogate loss (value: mean adversarial loss; gradient: the trainer's parameter gradient) over
        ``params`` (default: every trainable parameter of ``model``)."""
        params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
        res = self.gradients(model, loss_fn, input_ids, attention_mask, params)
        return surrogate_loss(res.loss, params, res.grads)

    def describe(self) -> str:
        bound = f"max_norm {self.max_norm}" if self.max_norm > 0 else "no projection"
        return f"{self.method} K={self.steps}, init {self.init_mag}, step {self.step_size}, {bound} ({self.norm})"
