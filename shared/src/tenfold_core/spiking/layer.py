"""Spiking Transformer building blocks (Spikformer family) on time-first ``[T, B, N, D]`` tensors.

Two wirings are supported through ``lif_position``:

- ``"post"`` (SpikeBERT): every projection is ``Linear -> Norm -> LIF``; each branch ends in a LIF, so the
  branches output spikes and the residual stream holds integer spike counts.
- ``"pre"`` (SpikeCLIP vision, Spikingformer-style): each branch starts with a LIF on its (real/integer) input, and
  its last projection is ``Linear -> Norm`` without a LIF. (The original Spikformer is ``"post"`` with BatchNorm.)

Attention is softmax-free: ``LIF_{0.5}((Q Kᵀ) V * scale)`` per head, with Q, K, V spike tensors. An optional
``key_padding_mask`` ``[B, N]`` (True at padded positions, the ``torch.nn.MultiheadAttention`` convention; pass
``attention_mask == 0`` from a Hugging Face tokenizer) zeroes padded keys and values, and the BatchNorm variant
computes its training statistics over non-padded tokens only, so padded positions never change the outputs at
non-padded positions.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import NeuronConfig, resolve_neuron_config
from .neuron import make_neuron

__all__ = [
    "AUTO_QK_REFERENCE",
    "SpikeMatMul",
    "SpikingMLP",
    "SpikingSelfAttention",
    "SpikingTransformerBlock",
    "TokenNorm",
    "auto_qk_scale",
]

#: ``(scale, head width, real keys)`` of the reference operating point of ``qk_scale="auto"``: the paper's 0.125 at
#: head width 96 (BERT-base, 8 heads) and 16 real keys (a typical SST-2 sentence with padding masked). There the mean
#: input of the attention LIF is about 0.1 (threshold 0.5); ``auto`` keeps ``scale * head_width * keys`` at this
#: product. (Measured on the synthetic demo at head width 16: a scale near 1 = this point trains, 4 and 10 do worse.)
AUTO_QK_REFERENCE = (0.125, 96, 16)


def auto_qk_scale(head_dim: int, keys: torch.Tensor | int) -> torch.Tensor | float:
    """``qk_scale="auto"``: ``0.125 * 96 * 16 / (head_dim * keys)``, per sample when ``keys`` is a tensor.

    ``(Q Kᵀ) V`` sums ``keys * head_dim`` products of spikes, so its mean grows linearly with both; dividing by
    them keeps the attention LIF's mean input at the reference point (:data:`AUTO_QK_REFERENCE`) whatever the
    model size or the amount of padding (only real, unmasked keys count).
    """
    s, dh, n = AUTO_QK_REFERENCE
    if torch.is_tensor(keys):
        return (s * dh * n) / (head_dim * keys.clamp_min(1).to(torch.float32))
    return (s * dh * n) / (head_dim * max(int(keys), 1))


def _neuron_cfg(neuron, neuron_kwargs) -> NeuronConfig:
    return resolve_neuron_config(neuron, neuron_kwargs)


def _keep(key_padding_mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    """``[B, N]`` padding mask (True = pad) -> ``[B, N]`` bool keep mask, validated against ``x`` [T, B, N, D]."""
    if key_padding_mask is None:
        return None
    if key_padding_mask.shape != x.shape[1:3]:
        raise ValueError(
            f"key_padding_mask must be [B, N] = {tuple(x.shape[1:3])}, got {tuple(key_padding_mask.shape)}"
        )
    return ~key_padding_mask.to(device=x.device, dtype=torch.bool)


class SpikeMatMul(nn.Module):
    """``a @ b`` as a module, so forward hooks (energy estimator) can count its synaptic operations."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Batched matrix product ``a [..., m, k] @ b [..., k, n]``."""
        return a @ b


class TokenNorm(nn.Module):
    """Per-feature normalisation of ``[T, B, N, D]`` tokens: ``"layer"`` (LayerNorm over D) or ``"batch"``
    (BatchNorm over all T*B*N tokens, per feature D, like Spikformer's BN1d on 1x1 convs).

    With ``key_padding_mask`` in training mode, BatchNorm statistics use the non-padded tokens only and padded
    positions are set to 0.
    """

    def __init__(self, dim: int, kind: str = "layer", eps: float = 1e-5) -> None:
        super().__init__()
        if kind not in ("layer", "batch"):
            raise ValueError(f"norm must be 'layer' or 'batch', got {kind!r}")
        self.kind = kind
        self.norm = nn.LayerNorm(dim, eps=eps) if kind == "layer" else nn.BatchNorm1d(dim, eps=eps)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Normalise ``x`` ``[T, B, N, D]``; ``key_padding_mask`` ``[B, N]`` (True = pad) only matters for BatchNorm."""
        if self.kind == "layer":
            return self.norm(x)
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        keep = _keep(key_padding_mask, x)
        if keep is None or not self.training or flat.shape[0] == 0:
            return self.norm(flat).reshape(shape)
        keep_flat = keep.unsqueeze(0).expand(shape[0], -1, -1).reshape(-1)
        out = flat.new_zeros(flat.shape)
        out[keep_flat] = self.norm(flat[keep_flat])
        return out.reshape(shape)


class _LinearNorm(nn.Module):
    """``Linear -> TokenNorm [-> LIF]`` on ``[T, B, N, D]``."""

    def __init__(self, d_in, d_out, norm, bias, lif: nn.Module | None) -> None:
        super().__init__()
        self.linear = nn.Linear(d_in, d_out, bias=bias)
        self.norm = TokenNorm(d_out, norm)
        self.lif = lif if lif is not None else nn.Identity()

    def forward(self, x, key_padding_mask=None):
        return self.lif(self.norm(self.linear(x), key_padding_mask))


class SpikingSelfAttention(nn.Module):
    """Spiking self-attention (SSA), softmax-free, on ``[T, B, N, D]``.

    ``Q, K, V = LIF(Norm(Linear(x)))``; per head ``A = LIF_{attn_v_threshold}((Q Kᵀ) V * qk_scale)``; output
    ``Norm(Linear(A))`` followed by a LIF when ``lif_position="post"``. With ``lif_position="pre"`` a LIF is first
    applied to the input (SpikeCLIP vision), and the output has no LIF.

    Args:
        dim: model width D (must be divisible by ``num_heads``).
        num_heads: attention heads.
        qk_scale: scale applied to ``(Q Kᵀ) V``: a number (SpikeBERT and SpikeCLIP use 0.125) or ``"auto"``
            (:func:`auto_qk_scale`: ``0.125 * 96 * 16 / (head_width * real_keys)``, per sample).
        norm: ``"layer"`` (text) or ``"batch"`` (vision).
        attn_v_threshold: threshold of the LIF after the attention product (0.5 in SpikeBERT/SpikeCLIP).
        lif_position: ``"post"`` (SpikeBERT, Spikformer) or ``"pre"`` (SpikeCLIP vision).
        bias: bias of the linear projections.
        neuron: a :class:`~tenfold_core.spiking.NeuronConfig` (or mapping) shared by every neuron;
            ``v_threshold`` is used by all neurons except the attention one.
        **neuron_kwargs: single neuron fields (``tau=``, ``v_threshold=``, ``surrogate=`` ...) overriding ``neuron``.

    ``forward(x, key_padding_mask=None)``: ``x`` ``[T, B, N, D]``, mask ``[B, N]`` bool, True at padded positions.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        *,
        qk_scale: float | str = 0.125,
        norm: str = "layer",
        attn_v_threshold: float = 0.5,
        lif_position: str = "post",
        bias: bool = True,
        neuron: NeuronConfig | dict | None = None,
        **neuron_kwargs,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if lif_position not in ("post", "pre"):
            raise ValueError(f"lif_position must be 'post' or 'pre', got {lif_position!r}")
        if not (
            qk_scale == "auto" or (isinstance(qk_scale, (int, float)) and not isinstance(qk_scale, bool))
        ):
            raise ValueError(f"qk_scale must be a number or 'auto', got {qk_scale!r}")
        nc = _neuron_cfg(neuron, neuron_kwargs)
        self.neuron_config = nc
        self.dim, self.num_heads, self.qk_scale, self.lif_position = dim, num_heads, qk_scale, lif_position
        self.input_lif = make_neuron(nc) if lif_position == "pre" else nn.Identity()
        self.q = _LinearNorm(dim, dim, norm, bias, make_neuron(nc))
        self.k = _LinearNorm(dim, dim, norm, bias, make_neuron(nc))
        self.v = _LinearNorm(dim, dim, norm, bias, make_neuron(nc))
        self.qk = SpikeMatMul()
        self.av = SpikeMatMul()
        self.attn_lif = make_neuron(nc, v_threshold=attn_v_threshold)
        self.proj = _LinearNorm(dim, dim, norm, bias, make_neuron(nc) if lif_position == "post" else None)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        T, B, N, D = x.shape
        return x.reshape(T, B, N, self.num_heads, D // self.num_heads).transpose(2, 3)  # [T, B, H, N, dh]

    def _scale(self, keep, B: int, N: int, x: torch.Tensor):
        if self.qk_scale != "auto":
            return self.qk_scale
        dh = self.dim // self.num_heads
        if keep is None:
            return auto_qk_scale(dh, N)
        return auto_qk_scale(dh, keep.sum(1)).to(device=x.device, dtype=x.dtype).view(1, B, 1, 1, 1)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[T, B, N, D]`` -> ``[T, B, N, D]``; see the class docstring."""
        if x.dim() != 4 or x.shape[-1] != self.dim:
            raise ValueError(f"expected [T, B, N, {self.dim}], got {tuple(x.shape)}")
        T, B, N, D = x.shape
        keep = _keep(key_padding_mask, x)
        x = self.input_lif(x)
        q = self._heads(self.q(x, key_padding_mask))
        k = self._heads(self.k(x, key_padding_mask))
        v = self._heads(self.v(x, key_padding_mask))
        if keep is not None:
            kv_keep = keep.to(k.dtype)[None, :, None, :, None]  # [1, B, 1, N, 1]
            k = k * kv_keep
            v = v * kv_keep
        attn = self.qk(q, k.transpose(-2, -1))  # [T, B, H, N, N], integer counts
        out = self.av(attn, v) * self._scale(keep, B, N, x)  # [T, B, H, N, dh]
        out = out.transpose(2, 3).reshape(T, B, N, D)
        out = self.attn_lif(out)
        return self.proj(out, key_padding_mask)


class SpikingMLP(nn.Module):
    """Spiking MLP on ``[T, B, N, D]``: ``Linear(D->H) -> Norm -> LIF -> Linear(H->D_out) -> Norm [-> LIF]``.

    With ``lif_position="post"`` (SpikeBERT) the output passes through a LIF; with ``"pre"`` (SpikeCLIP vision) a LIF is
    applied to the input instead and the output is the last norm.

    Args:
        dim: input width D.
        hidden_dim: hidden width (default ``4 * dim``).
        out_dim: output width (default ``dim``).
        norm: ``"layer"`` or ``"batch"``.
        lif_position: ``"post"`` or ``"pre"``.
        bias, neuron, **neuron_kwargs: as in :class:`SpikingSelfAttention`.

    ``forward(x, key_padding_mask=None)``; the mask only affects BatchNorm statistics (the MLP is per token).
    """

    def __init__(
        self,
        dim: int,
        hidden_dim: int | None = None,
        out_dim: int | None = None,
        *,
        norm: str = "layer",
        lif_position: str = "post",
        bias: bool = True,
        neuron: NeuronConfig | dict | None = None,
        **neuron_kwargs,
    ) -> None:
        super().__init__()
        if lif_position not in ("post", "pre"):
            raise ValueError(f"lif_position must be 'post' or 'pre', got {lif_position!r}")
        hidden_dim = 4 * dim if hidden_dim is None else hidden_dim
        out_dim = dim if out_dim is None else out_dim
        nc = _neuron_cfg(neuron, neuron_kwargs)
        self.neuron_config = nc
        self.lif_position = lif_position
        self.input_lif = make_neuron(nc) if lif_position == "pre" else nn.Identity()
        self.fc1 = _LinearNorm(dim, hidden_dim, norm, bias, make_neuron(nc))
        self.fc2 = _LinearNorm(
            hidden_dim, out_dim, norm, bias, make_neuron(nc) if lif_position == "post" else None
        )

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[T, B, N, D]`` -> ``[T, B, N, out_dim]``."""
        return self.fc2(self.fc1(self.input_lif(x), key_padding_mask), key_padding_mask)


class SpikingTransformerBlock(nn.Module):
    """One spiking Transformer block: ``x = x + SSA(x); x = x + MLP(x)`` on ``[T, B, N, D]``.

    Args:
        dim, num_heads: width and heads.
        mlp_ratio: MLP hidden width = ``int(dim * mlp_ratio)``.
        qk_scale, norm, attn_v_threshold, lif_position, bias: see :class:`SpikingSelfAttention`.
        neuron, **neuron_kwargs: neuron settings shared by all neurons (see :class:`SpikingSelfAttention`).

    Presets: SpikeBERT = ``norm="layer", lif_position="post", surrogate="atan"``; SpikeCLIP vision =
    ``norm="batch", lif_position="pre", surrogate="sigmoid"``. ``forward(x, key_padding_mask=None)``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        *,
        qk_scale: float | str = 0.125,
        norm: str = "layer",
        attn_v_threshold: float = 0.5,
        lif_position: str = "post",
        bias: bool = True,
        neuron: NeuronConfig | dict | None = None,
        **neuron_kwargs,
    ) -> None:
        super().__init__()
        nc = _neuron_cfg(neuron, neuron_kwargs)
        common = dict(norm=norm, lif_position=lif_position, bias=bias, neuron=nc)
        self.attn = SpikingSelfAttention(
            dim, num_heads, qk_scale=qk_scale, attn_v_threshold=attn_v_threshold, **common
        )
        self.mlp = SpikingMLP(dim, int(dim * mlp_ratio), **common)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[T, B, N, D]`` -> ``[T, B, N, D]`` with residual connections around attention and MLP."""
        x = x + self.attn(x, key_padding_mask)
        return x + self.mlp(x, key_padding_mask)
