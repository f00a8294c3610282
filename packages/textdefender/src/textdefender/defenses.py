"""TA-VAT, InfoBERT, ASCC, DNE and SAFER: the parts of :class:`textdefender.train.DefenseModule` that are not plain
cross-entropy or the core's embedding adversary.

Each defense is an ``nn.Module`` held by the LightningModule (so its own parameters, InfoBERT's critic, are trained
by the same optimizer and all-reduced by DDP) with ``training_loss(module, batch)``; the exported network stays
``module.model``. Multi-pass defenses take every pass's parameter gradient with ``torch.autograd.grad`` and hand
Lightning a *surrogate* loss whose gradient is the accumulated one (``tenfold_core.adversarial.surrogate_loss``), as
the core's FreeLB does: one graph alive at a time, clipping / AMP / DDP unchanged.

- **TA-VAT** (Li & Qiu 2021; the official ``tavat`` trainer): a sentence-level perturbation (FreeLB init) plus a
  token-level one initialised from a *global* table of accumulated per-token perturbations (one row per vocabulary
  token); ascent steps normalise the gradient per example (sentence part) and **per token** (token part), each
  token's perturbation is rescaled by its norm relative to the largest in its example (the token-level ball), the
  total is projected to ``tavat_max_norm``; after the last step the token perturbations are added into the table.
  ``tavat_kl > 0`` adds the virtual term KL(p(x) || p(x + delta)).
- **InfoBERT** (Wang et al. 2021; the official ``infobert`` trainer, on FreeLB): per ascent step, the task loss plus
  ``beta`` x an information-bottleneck upper bound on the embedding-layer token features (the official CLUB
  estimate), and ``alpha`` x minus an InfoNCE lower bound between *anchored* token features (ranked by the gradient
  norm on delta, quantiles ``[cl, ch)``) and the sentence feature ([CLS] of the last layer).
- **ASCC** (Dong et al. 2021): every token's embedding is replaced by a convex combination (softmax weights) of the
  embeddings of the token and its synonyms; the weights are optimised adversarially (inner Adam: maximise
  KL(p(x) || p(x_hull)) with an entropy sparsity term ``alpha``), then the model trains on
  CE(x) + ``beta`` KL(p(x) || p(x_hull)).
- **DNE** (Zhou et al. 2021): convex combinations sampled from a Dirichlet over the word, its synonyms (concentration
  ``alpha``) and their synonyms (``alpha * decay``), ascended ``dne_steps`` times on the weights' logits; at test time
  an ensemble over ``dne_ensemble`` Dirichlet samples.
- **SAFER** (Ye et al. 2020): every word replaced by a uniform draw from {word} + its synonyms at training; at test
  time an ensemble vote over ``ensemble`` randomly substituted copies (attacked with EOT too).

The synonym table is the attack harness's (``tenfold_core.attack.evaluation.resolve_synonyms``), mapped to token ids
(:class:`SynonymIndex`) and saved as ``synonyms.json`` in the run folder so the test-time ensembles use the training
table.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tenfold_core.adversarial import ascent_step, init_delta, input_embedding_layer, project, surrogate_loss

__all__ = [
    "NEW_DEFENSES",
    "SYNONYM_DEFENSES",
    "SynonymIndex",
    "defense_synonym_index",
    "build_defense",
    "TokenAwareVAT",
    "InfoBERT",
    "ASCC",
    "DNE",
    "SAFER",
    "token_ascent",
    "anchored_features",
    "club_upper_bound",
    "infonce_lower_bound",
    "masked_softmax",
    "dirichlet_weights",
    "random_synonym_ids",
    "DirichletEnsemble",
    "defense_victims",
]

NEW_DEFENSES = ("tavat", "infobert", "ascc", "dne", "safer")
SYNONYM_DEFENSES = ("ascc", "dne", "safer")
_WORD = re.compile(r"^[a-z][a-z'\-]*$")


def _params(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def _accumulate(acc: list, grads, scale: float = 1.0) -> None:
    for j, g in enumerate(grads):
        if g is not None:
            acc[j] = g * scale if acc[j] is None else acc[j] + g * scale


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1 else None


# ------------------------------------------------------------------------------------------------ synonym table
class SynonymIndex:
    """Token-level synonym table: ``nbrs [V, N]`` (row ``t`` = ``t``, its first-order synonyms, then second-order
    ones, ``-1`` padding), ``first [V]`` (entries of the row that are the token or first-order synonyms) and
    ``cont [V]`` (continuation pieces, ``##ing``: a token followed by one is part of a longer word and keeps only
    itself). ``words`` is the first-order table ``{word: [synonyms]}`` (saved with the run)."""

    def __init__(self, nbrs: torch.Tensor, first: torch.Tensor, cont: torch.Tensor, words: dict):
        self.nbrs, self.first, self.cont, self.words = nbrs, first, cont, words

    @classmethod
    def build(cls, tokenizer, synonyms, k: int = 8, total: int = 0) -> SynonymIndex:
        """From any :class:`~tenfold_core.attack.SynonymSource` (or a ``{word: [synonyms]}`` dict): whole-word
        tokens get their candidates that are themselves whole-word tokens, at most ``k``; ``total > 0`` fills rows
        with synonyms of synonyms up to ``total`` entries (DNE's second-order hull)."""
        vocab = tokenizer.get_vocab()
        size = max(len(tokenizer), max(vocab.values()) + 1)
        tokens = [""] * size
        for t, i in vocab.items():
            tokens[i] = t
        special = set(getattr(tokenizer, "all_special_tokens", []))
        marker = next((m for m in ("Ġ", "▁") if sum(t.startswith(m) for t in tokens) > 0.2 * len(tokens)), "")
        word2id: dict[str, int] = {}
        cont = torch.zeros(size, dtype=torch.bool)
        for i, t in enumerate(tokens):
            if not t or t in special:
                continue
            if (marker and not t.startswith(marker)) or (not marker and t.startswith("##")):
                cont[i] = True
                continue
            w = t[len(marker) :].lower()
            if _WORD.match(w):
                word2id.setdefault(w, i)
        lookup = synonyms.candidates if hasattr(synonyms, "candidates") else (lambda w: synonyms.get(w, []))
        rows = [[i] for i in range(size)]
        words: dict[str, list[str]] = {}
        for w, i in word2id.items():
            cands = []
            for c in lookup(w):
                c = c.lower()
                if c != w and c in word2id and c not in cands:
                    cands.append(c)
                if len(cands) >= k:
                    break
            if cands:
                words[w] = cands
                rows[i] = [i] + [word2id[c] for c in cands]
        first = [len(r) for r in rows]
        if total > 0:
            out = []
            for r in rows:
                r2 = list(r[:total])
                for j in r[1:]:
                    for n in rows[j][1:]:
                        if len(r2) >= total:
                            break
                        if n not in r2:
                            r2.append(n)
                out.append(r2)
            rows = out
            first = [min(f, len(r)) for f, r in zip(first, rows)]
        width = max(len(r) for r in rows)
        nbrs = torch.full((size, width), -1, dtype=torch.long)
        for i, r in enumerate(rows):
            nbrs[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        return cls(nbrs, torch.tensor(first, dtype=torch.long), cont, words)

    def to(self, device) -> SynonymIndex:
        if self.nbrs.device != torch.device(device):
            self.nbrs, self.first, self.cont = (
                self.nbrs.to(device),
                self.first.to(device),
                self.cont.to(device),
            )
        return self

    def rows(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rows [..., L, N], first [..., L])`` for ``ids [..., L]``; a token followed by a continuation piece keeps
        only itself."""
        self.to(ids.device)
        rows, first = self.nbrs[ids], self.first[ids]
        nxt = torch.zeros_like(ids, dtype=torch.bool)
        nxt[..., :-1] = self.cont[ids[..., 1:]]
        keep = torch.ones_like(rows, dtype=torch.bool)
        keep[..., 1:] = ~nxt.unsqueeze(-1)
        return rows.masked_fill(~keep, -1), torch.where(nxt, torch.ones_like(first), first)

    def save(self, path) -> None:
        from tenfold_core.io import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.words, sort_keys=True))

    @staticmethod
    def load_words(path) -> dict:
        return json.loads(Path(path).read_text(encoding="utf-8"))


def defense_synonym_index(defense, model, tokenizer, *, synthetic: bool = False) -> SynonymIndex:
    """The defender's table from ``defense.synonyms`` through the attack harness's resolver (the same source and
    the same rule as ``attack.synonyms``), as token ids."""
    from tenfold_core.attack import Victim
    from tenfold_core.attack.evaluation import resolve_synonyms

    victim = Victim(model, tokenizer, max_length=getattr(getattr(model, "config", None), "max_length", None))
    was_training = model.training
    source = resolve_synonyms(defense.synonyms, victim, synthetic=synthetic, k=max(defense.synonym_k, 50))
    model.train(was_training)
    total = defense.dne_nbr_num if defense.name == "dne" else 0
    return SynonymIndex.build(tokenizer, source, k=defense.synonym_k, total=total)


def build_defense(defense, model, synonym_index=None):
    """The defense part for ``defense.name`` (None for the defenses train.py runs itself)."""
    name = defense.name
    if name in SYNONYM_DEFENSES and synonym_index is None:
        from tenfold_core.errors import ConfigError

        raise ConfigError(f"defense.name {name}: needs a synonym table (defense.synonyms)")
    if name == "tavat":
        return TokenAwareVAT(defense)
    if name == "infobert":
        return InfoBERT(
            defense, model.net.config.hidden_size if hasattr(model, "net") else model.config.hidden_size
        )
    if name == "ascc":
        return ASCC(defense, synonym_index)
    if name == "dne":
        return DNE(defense, synonym_index)
    if name == "safer":
        return SAFER(defense, synonym_index)
    return None


# --------------------------------------------------------------------------------------------------------- TA-VAT
def token_ascent(delta_tok: torch.Tensor, grad_tok: torch.Tensor, step_size: float, mask: torch.Tensor):
    """TA-VAT's token-part ascent: ``delta + step * g / ||g||`` with the gradient normalised **per token**, then each
    token's perturbation rescaled by ``||delta_i|| / max_j ||delta_j||`` over its example (the token-level
    normalisation ball: the most perturbed token keeps its norm, the others shrink)."""
    m = mask.to(delta_tok.dtype).unsqueeze(-1)
    g = grad_tok / grad_tok.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    d = (delta_tok + step_size * g) * m
    n = d.norm(dim=-1)  # [B, L]
    top = n.max(dim=-1, keepdim=True).values.clamp_min(1e-12)
    return d * (n / top).unsqueeze(-1)


class TokenAwareVAT(nn.Module):
    """TA-VAT (see the module docstring). The global table is a plain tensor (not a buffer: DDP would broadcast
    rank 0's copy over every rank's update at each forward); every rank applies the updates of all ranks, and the
    table travels in Lightning checkpoints (``extra_state``)."""

    def __init__(self, defense):
        super().__init__()
        self.cfg = defense
        self.table: torch.Tensor | None = None

    def _init_table(self, weight: torch.Tensor) -> None:
        v, d = weight.shape
        t = (torch.rand(v, d, device=weight.device) * 2 - 1) * (self.cfg.tavat_init_mag / math.sqrt(d))
        dist = _dist()
        if dist is not None:
            dist.broadcast(t, 0)
        self.table = t

    def _update_table(self, ids: torch.Tensor, rows: torch.Tensor) -> None:
        dist = _dist()
        if dist is not None:  # gather every rank's (ids, perturbations), padded to the largest count
            n = torch.tensor([ids.numel()], device=ids.device)
            sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
            dist.all_gather(sizes, n)
            top = int(max(s.item() for s in sizes))
            pid = torch.full((top,), -1, dtype=ids.dtype, device=ids.device)
            pid[: ids.numel()] = ids
            prow = torch.zeros(top, rows.shape[-1], dtype=rows.dtype, device=rows.device)
            prow[: ids.numel()] = rows
            all_ids = [torch.empty_like(pid) for _ in sizes]
            all_rows = [torch.empty_like(prow) for _ in sizes]
            dist.all_gather(all_ids, pid)
            dist.all_gather(all_rows, prow)
            ids, rows = torch.cat(all_ids), torch.cat(all_rows)
            keep = ids >= 0
            ids, rows = ids[keep], rows[keep]
        self.table.index_put_((ids,), rows.to(self.table.dtype), accumulate=True)

    def extra_state(self) -> dict:
        return {} if self.table is None else {"tavat_table": self.table.detach().cpu()}

    def load_extra_state(self, state: dict) -> None:
        if "tavat_table" in state:
            self.table = state["tavat_table"]

    def training_loss(self, module, batch) -> torch.Tensor:
        c, model = self.cfg, module.model
        ids, mask, y = batch["input_ids"], batch["attention_mask"], batch["labels"]
        emb_layer = input_embedding_layer(model)
        if self.table is None:
            self._init_table(emb_layer.weight.detach())
        self.table = self.table.to(emb_layer.weight.device)
        params = _params(module)
        m = mask.to(emb_layer.weight.dtype).unsqueeze(-1)
        embeds = emb_layer(ids)
        lb = init_delta(embeds.detach(), mask, c.tavat_init_mag, "l2")
        tok = (self.table[ids] if c.tavat_global else emb_layer.weight.detach()[ids]) * m
        tok = tok / tok.norm().clamp_min(
            1e-12
        )  # the whole batch's token part has unit norm, as the official code
        p_clean = None
        if c.tavat_kl > 0:
            with torch.no_grad():
                p_clean = model(input_ids=ids, attention_mask=mask).logits.softmax(-1)
        acc: list = [None] * len(params)
        total, k = None, c.tavat_steps
        self.delta_history = []
        for t in range(k):
            lb, tok = lb.detach().requires_grad_(True), tok.detach().requires_grad_(True)
            if t > 0:
                embeds = emb_layer(ids)
            logits = model(inputs_embeds=embeds + lb + tok, attention_mask=mask).logits
            loss = F.cross_entropy(logits, y)
            if p_clean is not None:
                loss = loss + c.tavat_kl * F.kl_div(logits.log_softmax(-1), p_clean, reduction="batchmean")
            last = t == k - 1
            grads = torch.autograd.grad(loss, ([] if last else [lb, tok]) + params, allow_unused=True)
            _accumulate(acc, grads[-len(params) :], 1.0 / k)
            total = loss.detach() if total is None else total + loss.detach()
            if last:
                break
            g_lb, g_tok = grads[0], grads[1]
            lb = ascent_step(lb.detach(), g_lb, c.tavat_step_size, "l2") * m
            tok = token_ascent(tok.detach(), g_tok, c.tavat_step_size, mask)
            if c.tavat_max_norm > 0:
                n = (lb + tok).reshape(lb.shape[0], -1).norm(dim=1)
                scale = torch.where(
                    n > c.tavat_max_norm, c.tavat_max_norm / n.clamp_min(1e-12), torch.ones_like(n)
                )
                lb, tok = lb * scale.view(-1, 1, 1), tok * scale.view(-1, 1, 1)
            self.delta_history.append((lb.detach(), tok.detach()))
        real = mask.bool()
        with torch.no_grad():
            self._update_table(ids[real], tok.detach()[real])
        return surrogate_loss(total / k, params, acc)


# ------------------------------------------------------------------------------------------------------- InfoBERT
def anchored_features(grad: torch.Tensor, mask: torch.Tensor, cl: float, ch: float):
    """InfoBERT's local anchored features: per example, the real tokens ranked by ``||grad||`` (ascending) and those
    of rank ``ceil(n cl) .. ceil(n ch) - 1`` kept (n = real tokens). Returns ``(example index, position)``."""
    norms = grad.norm(dim=-1).masked_fill(~mask.bool(), float("inf"))
    order = norms.argsort(dim=1, stable=True)
    n = mask.sum(1).double()
    lo, hi = torch.ceil(n * cl).long(), torch.ceil(n * ch).long()
    r = torch.arange(mask.shape[1], device=mask.device)
    sel = (r >= lo[:, None]) & (r < hi[:, None])
    b, rank = sel.nonzero(as_tuple=True)
    return b, order[b, rank]


def club_upper_bound(tokens: torch.Tensor) -> torch.Tensor:
    """The official InfoBERT CLUB estimate over token features ``[N, D]``: ``E ||t_i - t_r(i)||^2 / 2`` over random
    pairs (its conditional q(t | x) is a unit Gaussian centred at t, so only the negative term remains)."""
    idx = torch.randint(tokens.shape[0], (tokens.shape[0],), device=tokens.device)
    return ((tokens - tokens[idx]) ** 2 / 2).sum(-1).mean()


def infonce_lower_bound(critic: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """InfoNCE lower bound of I(x; y) with a critic on concatenated pairs: ``E F(x_i, y_i) - E_i logsumexp_j
    F(x_j, y_i) + log S``."""
    s = x.shape[0]
    t0 = critic(torch.cat([x, y], -1)).mean()
    xt, yt = x.unsqueeze(0).expand(s, s, -1), y.unsqueeze(1).expand(s, s, -1)
    t1 = critic(torch.cat([xt, yt], -1)).squeeze(-1)
    return t0 - (t1.logsumexp(dim=1).mean() - math.log(s))


class InfoBERT(nn.Module):
    """InfoBERT on FreeLB (see the module docstring); ``critic`` is the InfoNCE network (hidden 300, softplus)."""

    def __init__(self, defense, hidden: int):
        super().__init__()
        self.cfg = defense
        self.critic = nn.Sequential(nn.Linear(2 * hidden, 300), nn.ReLU(), nn.Linear(300, 1), nn.Softplus())
        self.last_terms: dict = {}

    def training_loss(self, module, batch) -> torch.Tensor:
        c, model = self.cfg, module.model
        ids, mask, y = batch["input_ids"], batch["attention_mask"], batch["labels"]
        emb_layer = input_embedding_layer(model)
        params = _params(module)  # the model's and the critic's
        k, norm = c.infobert_steps, c.norm
        embeds = emb_layer(ids)
        delta = project(
            init_delta(embeds.detach(), mask, c.infobert_init_mag, norm), c.infobert_max_norm, norm
        )
        acc: list = [None] * len(params)
        total = None
        for t in range(k):
            delta = delta.detach().requires_grad_(True)
            if t > 0:
                embeds = emb_layer(ids)
            out = model(inputs_embeds=embeds + delta, attention_mask=mask, output_hidden_states=True)
            task = F.cross_entropy(out.logits, y)
            upper = c.infobert_beta * club_upper_bound(out.hidden_states[0][mask.bool()])
            (g_delta,) = torch.autograd.grad((task + upper) / k, delta, retain_graph=True)
            lower = self._lower(out, mask, g_delta, ids.shape[0])
            self.last_terms["upper"] = float(upper.detach())
            grads = torch.autograd.grad((task + upper + lower) / k, params, allow_unused=True)
            _accumulate(acc, grads)
            total = task.detach() if total is None else total + task.detach()
            if t == k - 1:
                break
            delta = project(
                ascent_step(delta.detach(), g_delta, c.infobert_step_size, norm), c.infobert_max_norm, norm
            )
            delta = delta * mask.to(delta.dtype).unsqueeze(-1)
        return surrogate_loss(total / k, params, acc)

    def _lower(self, out, mask, g_delta, chunk: int) -> torch.Tensor:
        """``-alpha`` x the InfoNCE lower bound between anchored token features (embedding layer) and [CLS] of the
        last layer, over shuffled pairs in chunks of ``chunk`` (the official code: chunks of the batch size)."""
        c = self.cfg
        b, pos = anchored_features(g_delta, mask, c.infobert_cl, c.infobert_ch)
        weight = 1.0
        if b.numel() == 0:  # keep the critic in the graph (DDP): one zero-weighted pair
            b = pos = torch.zeros(1, dtype=torch.long, device=mask.device)
            weight = 0.0
        h0, hl = out.hidden_states[0], out.hidden_states[-1]
        local, glob = h0[b, pos], hl[b, 0]
        perm = torch.randperm(local.shape[0], device=local.device)
        local, glob = local[perm], glob[perm]
        bounds = [infonce_lower_bound(self.critic, local[i : i + chunk], glob[i : i + chunk])
                  for i in range(0, local.shape[0], chunk)]  # fmt: skip
        lower = torch.stack(bounds).mean() * weight
        self.last_terms = {"lower": float(lower.detach()), "anchored": int(b.numel()) if weight else 0}
        return -c.infobert_alpha * lower


# ----------------------------------------------------------------------------------------------------------- ASCC
def masked_softmax(logits: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension restricted to ``valid`` entries (exact zeros elsewhere)."""
    return logits.masked_fill(~valid, float("-inf")).softmax(-1)


def _hull(weights: torch.Tensor, nbr_embeds: torch.Tensor) -> torch.Tensor:
    return (weights.unsqueeze(-1) * nbr_embeds).sum(-2)


class ASCC(nn.Module):
    """ASCC (see the module docstring); ``last_kl`` records the inner objective's KL before / after the ascent."""

    def __init__(self, defense, index: SynonymIndex):
        super().__init__()
        self.cfg, self.index = defense, index
        self.last: dict = {}

    def adversarial_weights(self, model, ids, mask, rows, valid, nbr_embeds, p_clean):
        """The inner maximisation: Adam on the logits ``w`` of the convex weights (kaiming-normal start, as the
        official code) to maximise KL(p(x) || p(x_hull)) - alpha * entropy(softmax(w))."""
        c = self.cfg
        b, L, n = rows.shape
        w = (torch.randn(b, L, n, device=ids.device) * math.sqrt(2.0 / (L * n))).requires_grad_(True)
        opt = torch.optim.Adam([w], lr=c.ascc_lr, weight_decay=2e-5)
        kls, ents = [], []
        for _ in range(c.ascc_steps):
            p = masked_softmax(w, valid)
            logits = model(inputs_embeds=_hull(p, nbr_embeds), attention_mask=mask).logits
            kl = F.kl_div(logits.log_softmax(-1), p_clean, reduction="sum")
            logp = w.masked_fill(~valid, float("-inf")).log_softmax(-1).masked_fill(~valid, 0.0)
            entropy = -(p * logp).sum(-1).mean()  # padding slots: p = 0 and log p set to 0 (no 0 * inf)
            (g,) = torch.autograd.grad(-kl + c.ascc_alpha * entropy, w)
            opt.zero_grad()
            w.grad = g
            opt.step()
            kls.append(float(kl.detach()))
            ents.append(float(entropy.detach()))
        self.last["inner_kl"], self.last["inner_entropy"] = kls, ents
        return masked_softmax(w.detach(), valid)

    def training_loss(self, module, batch) -> torch.Tensor:
        c, model = self.cfg, module.model
        ids, mask, y = batch["input_ids"], batch["attention_mask"], batch["labels"]
        emb_layer = input_embedding_layer(model)
        rows, _ = self.index.rows(ids)
        valid = rows >= 0
        nbr_embeds = emb_layer(rows.clamp_min(0))  # [B, L, N, D], with its graph to the embedding matrix
        with torch.no_grad():
            p_clean = model(input_ids=ids, attention_mask=mask).logits.softmax(-1)
        weights = self.adversarial_weights(model, ids, mask, rows, valid, nbr_embeds.detach(), p_clean)
        self.last["weights"], self.last["rows"] = weights, rows
        clean = model(input_ids=ids, attention_mask=mask).logits
        adv = model(inputs_embeds=_hull(weights, nbr_embeds), attention_mask=mask).logits
        kl = F.kl_div(adv.log_softmax(-1), clean.softmax(-1), reduction="batchmean")
        return F.cross_entropy(clean, y) + c.ascc_beta * kl


# ------------------------------------------------------------------------------------------------------------ DNE
def dirichlet_weights(rows, first, alpha: float, decay: float) -> torch.Tensor:
    """Convex weights ``[..., N]`` drawn from a Dirichlet with concentration ``alpha`` on the token and its
    first-order synonyms, ``alpha * decay`` on second-order ones, and no mass on padding (global torch RNG)."""
    valid = rows >= 0
    slot = torch.arange(rows.shape[-1], device=rows.device)
    conc = torch.where(slot < first.unsqueeze(-1), alpha, alpha * decay).to(torch.float32)
    g = torch._standard_gamma(conc.masked_fill(~valid, 1.0)).masked_fill(~valid, 0.0)
    s = g.sum(-1, keepdim=True)
    self_only = torch.zeros_like(g)
    self_only[..., 0] = 1.0
    return torch.where(s > 0, g / s.clamp_min(1e-30), self_only)


class DNE(nn.Module):
    """DNE (see the module docstring). Training: one pass at a Dirichlet sample, then ``dne_steps`` ascent passes on
    the weights' logits; the parameter gradient is the mean over the passes."""

    def __init__(self, defense, index: SynonymIndex):
        super().__init__()
        self.cfg, self.index = defense, index
        self.last: dict = {}

    def training_loss(self, module, batch) -> torch.Tensor:
        c, model = self.cfg, module.model
        ids, mask, y = batch["input_ids"], batch["attention_mask"], batch["labels"]
        emb_layer = input_embedding_layer(model)
        rows, first = self.index.rows(ids)
        valid = rows >= 0
        params = _params(module)
        logit = (
            (dirichlet_weights(rows, first, c.dne_alpha, c.dne_decay) + 1e-6)
            .log()
            .masked_fill(~valid, float("-inf"))
        )
        passes = 1 + c.dne_steps
        acc: list = [None] * len(params)
        total, losses, self.last["weights"] = None, [], []
        for t in range(passes):
            logit = (logit - logit.max(-1, keepdim=True).values).detach().requires_grad_(True)
            weights = logit.softmax(-1)
            self.last["weights"].append(weights.detach())
            nbr_embeds = emb_layer(rows.clamp_min(0))
            loss = F.cross_entropy(
                model(inputs_embeds=_hull(weights, nbr_embeds), attention_mask=mask).logits, y
            )
            last = t == passes - 1
            grads = torch.autograd.grad(loss, ([] if last else [logit]) + params, allow_unused=True)
            _accumulate(acc, grads[-len(params) :], 1.0 / passes)
            total = loss.detach() if total is None else total + loss.detach()
            losses.append(float(loss.detach()))
            if last:
                break
            g = grads[0].masked_fill(~valid, 0.0)
            logit = logit.detach() + c.dne_step_size * g / (g.norm(dim=-1, keepdim=True) + 1e-6)
        self.last["losses"], self.last["rows"] = losses, rows
        return surrogate_loss(total / passes, params, acc)

    def sample_logits(self, model, ids, mask, generator_seed: int | None = None):
        """Logits at one Dirichlet sample (validation)."""
        emb_layer = input_embedding_layer(model)
        rows, first = self.index.rows(ids)
        with torch.random.fork_rng(devices=[]):
            if generator_seed is not None:
                torch.manual_seed(generator_seed)
            w = dirichlet_weights(rows.cpu(), first.cpu(), self.cfg.dne_alpha, self.cfg.dne_decay).to(
                ids.device
            )
        return model(inputs_embeds=_hull(w, emb_layer(rows.clamp_min(0))), attention_mask=mask).logits


# ---------------------------------------------------------------------------------------------------------- SAFER
def random_synonym_ids(ids, mask, index: SynonymIndex, generator=None) -> torch.Tensor:
    """SAFER's training input: every real token with synonyms replaced by a uniform draw from {token} + synonyms."""
    rows, _ = index.rows(ids)
    count = (rows >= 0).sum(-1)
    u = torch.rand(ids.shape, generator=generator, device="cpu").to(ids.device)
    pick = (u * count).long().clamp(max=count - 1)
    new = rows.gather(-1, pick.unsqueeze(-1)).squeeze(-1)
    return torch.where(mask.bool(), new, ids)


class SAFER(nn.Module):
    def __init__(self, defense, index: SynonymIndex):
        super().__init__()
        self.cfg, self.index = defense, index

    def training_loss(self, module, batch) -> torch.Tensor:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        ids = random_synonym_ids(ids, mask, self.index)
        return F.cross_entropy(module.model(input_ids=ids, attention_mask=mask).logits, batch["labels"])


# ------------------------------------------------------------------------------------------------ test-time victims
def _text_seed(text: str, seed: int) -> int:
    return (
        int.from_bytes(hashlib.blake2b(f"{seed}|dne|{text}".encode(), digest_size=8).digest(), "little") >> 1
    )


class DirichletEnsemble:
    """DNE at test time: texts -> class probabilities averaged (``mode="logits"``) or voted over ``n`` Dirichlet
    samples of every word's hull. ``seeded``: each text's samples come from an RNG seeded by the text (the same query
    always gets the same answer, TextDefender's wrapper); else from the global torch RNG (fresh per call, for EOT)."""

    def __init__(self, model, tokenizer, index: SynonymIndex, alpha: float, decay: float, n: int = 12,
                 mode: str = "logits", seeded: bool = True, seed: int = 0, max_length: int = 128,
                 batch_size: int = 256):  # fmt: skip
        self.model, self.tokenizer, self.index = model, tokenizer, index
        self.alpha, self.decay, self.n, self.mode = alpha, decay, int(n), mode
        self.seeded, self.seed, self.max_length, self.batch_size = seeded, seed, max_length, batch_size

    @torch.inference_mode()
    def __call__(self, texts) -> np.ndarray:
        texts = list(texts)
        dev = next(self.model.parameters()).device
        enc = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        ids, mask = enc["input_ids"], enc["attention_mask"]
        rows, first = self.index.to("cpu").rows(ids)
        weights = torch.zeros(len(texts), self.n, *rows.shape[1:])
        for i, t in enumerate(texts):
            L = int(mask[i].sum())
            r, f = rows[i, :L].expand(self.n, L, -1), first[i, :L].expand(self.n, L)
            if self.seeded:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(_text_seed(t, self.seed))
                    weights[i, :, :L] = dirichlet_weights(r, f, self.alpha, self.decay)
            else:
                weights[i, :, :L] = dirichlet_weights(r, f, self.alpha, self.decay)
        emb_layer = input_embedding_layer(self.model)
        ids_n = ids.unsqueeze(1).expand(-1, self.n, -1).reshape(-1, ids.shape[1])
        rows_n = rows.unsqueeze(1).expand(-1, self.n, -1, -1).reshape(-1, *rows.shape[1:])
        mask_n = mask.unsqueeze(1).expand(-1, self.n, -1).reshape(-1, ids.shape[1])
        w_n = weights.reshape(-1, *rows.shape[1:])
        probs = []
        for s in range(0, ids_n.shape[0], self.batch_size):
            e = emb_layer(rows_n[s : s + self.batch_size].clamp_min(0).to(dev))
            x = _hull(w_n[s : s + self.batch_size].to(dev), e)
            out = self.model(inputs_embeds=x, attention_mask=mask_n[s : s + self.batch_size].to(dev))
            probs.append(out.logits.float().softmax(-1).cpu())
        from textdefender.evaluate import _aggregate

        return _aggregate(
            torch.cat(probs).reshape(len(texts), self.n, -1).numpy().astype(np.float64), self.mode
        )


def defense_victims(model, tokenizer, defense: dict, eot: int = 4) -> dict:
    """``{"ensemble": ..., "eot": ...}`` for SAFER and DNE (``defense`` is the run's defense section; its synonym
    table is ``defense["synonym_file"]``, the run folder's ``synonyms.json``)."""
    from tenfold_core.attack import (
        DictSynonyms,
        EnsembleVictim,
        EOTVictim,
        Victim,
        random_synonym_perturbation,
    )
    from tenfold_core.errors import ConfigError
    from textdefender.config import DefenseConfig

    path = defense.get("synonym_file")
    if not path or not Path(path).is_file():
        raise ConfigError(
            f"defense {defense.get('name')}: the run folder has no synonyms.json (train it again)"
        )
    words = SynonymIndex.load_words(path)
    known = {f for f in DefenseConfig.__dataclass_fields__}
    cfg = DefenseConfig(**{k: v for k, v in defense.items() if k in known})
    base = Victim(model, tokenizer, max_length=model.config.max_length)
    if cfg.name == "safer":
        from textdefender.evaluate import _FreshEnsemble

        perturb = random_synonym_perturbation(DictSynonyms(words, k=cfg.synonym_k), rate=1.0)
        ens = EnsembleVictim(base, perturb, n=cfg.ensemble, mode=cfg.vote)
        fresh = EOTVictim(_FreshEnsemble(base, perturb, cfg.ensemble, cfg.vote), n=eot, seed=0)
    elif cfg.name == "dne":
        index = SynonymIndex.build(tokenizer, words, k=cfg.synonym_k, total=cfg.dne_nbr_num)
        kw = dict(alpha=cfg.dne_alpha, decay=cfg.dne_decay, n=cfg.dne_ensemble, mode=cfg.vote,
                  max_length=model.config.max_length)  # fmt: skip
        ens = Victim(DirichletEnsemble(model, tokenizer, index, seeded=True, **kw))
        fresh = EOTVictim(DirichletEnsemble(model, tokenizer, index, seeded=False, **kw), n=eot, seed=0)
    else:
        raise ConfigError(f"defense_victims: {cfg.name} is not a randomised synonym defense")
    ens.input_embeddings = fresh.input_embeddings = base.input_embeddings
    return {"ensemble": ens, "eot": fresh}
