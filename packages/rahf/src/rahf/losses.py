"""The three objectives: SCIT (NLL + label-smoothed prompt contrast), the align loss on hidden states, DPO."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["token_logprobs", "scit_loss", "align_loss", "dpo_loss"]


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor, response_mask: torch.Tensor):
    """Per-row summed log-prob of the response tokens, their count, and the per-position log-probs ``[B, T-1]``."""
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    tok = logp.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    m = response_mask[:, 1:].to(tok.dtype)
    return (tok * m).sum(1), m.sum(1).clamp_min(1), tok * m


def scit_loss(
    match: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    opposite: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    eps: float = 0.2,
    form: str = "code",
    ce_over_padding: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """SCIT loss from :func:`token_logprobs` of the response under the matching and the opposite instruction.

    code: ``CE(y | p_match) + mean[(1-eps) * -log(P_m / (P_m + P_o)) + eps * -log(P_o / (P_m + P_o))]`` with
    ``P = exp(mean token log-prob)``. paper: ``-mean[logP_m + log(e^{logP_m} / (e^{logP_m} + e^{logP_o}))]`` with summed
    log-probs. ``ce_over_padding`` reproduces the official CE averaged over the whole padded length.
    """
    s_m, n_m, tok_m = match
    s_o, n_o, _ = opposite
    if ce_over_padding:
        nll = -tok_m.sum() / tok_m.numel()
    else:
        nll = -s_m.sum() / n_m.sum()
    if form == "code":
        logits = torch.stack([s_m / n_m, s_o / n_o], dim=1)  # log P-bar under each prompt
        lsm = torch.log_softmax(logits, dim=1)
        contrast = -((1 - eps) * lsm[:, 0] + eps * lsm[:, 1]).mean()
        loss = nll + contrast
    elif form == "paper":
        lsm = torch.log_softmax(torch.stack([s_m, s_o], dim=1), dim=1)
        contrast = -lsm[:, 0].mean()
        loss = -(s_m / n_m).mean() + contrast  # per-token NLL keeps the two terms on one scale [infer]
    else:
        raise ValueError(f"form: expected 'code' or 'paper', got {form!r}")
    return loss, {"nll": nll.detach(), "contrast": contrast.detach()}


def align_loss(
    hidden: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor,
    norm: str = "sq_l2",
    reduction: str = "masked",
) -> torch.Tensor:
    """Distance of hidden states ``[L, B, R, H]`` to their targets on valid response tokens ``valid [B, R]``.

    norm: ``sq_l2`` = ||h - h*||^2 (the paper) or ``l2`` = ||h - h*|| (the code). reduction: ``masked`` = mean over
    (layer, valid token); ``code`` = mean over every (layer, row, position), masked ones counting as zeros.
    """
    diff = (hidden.float() - target.float()) * valid[None, :, :, None].to(torch.float32)
    sq = diff.pow(2).sum(-1)
    if norm == "sq_l2":
        per_tok = sq
    elif norm == "l2":
        per_tok = torch.sqrt(sq + 1e-12) * valid[None].to(sq.dtype)
    else:
        raise ValueError(f"norm: expected 'sq_l2' or 'l2', got {norm!r}")
    if reduction == "masked":
        return per_tok.sum() / (valid.sum().clamp_min(1) * hidden.shape[0])
    if reduction == "code":
        return per_tok.mean()
    raise ValueError(f"reduction: expected 'masked' or 'code', got {reduction!r}")


def dpo_loss(pi_c, pi_r, ref_c, ref_r, beta: float = 0.1):
    """Sigmoid DPO: ``-log sigma(beta * ((pi_c - ref_c) - (pi_r - ref_r)))`` averaged; also the reward accuracy."""
    margin = beta * ((pi_c - ref_c) - (pi_r - ref_r))
    return -F.logsigmoid(margin).mean(), (margin > 0).float().mean()
