"""ADA and MixADA: adversarial data augmentation, and mixup of hidden states on the augmented set.

**ADA** (TextDefender's ``use_aug``; Si et al. 2021): attack the training set once with the shared harness
(:mod:`tenfold_core.attack`, the same search, synonym source and constraints as the benchmark's attack; recipe
``defense.aug_recipe``, PWWS by default as in the official code) against a *victim* — the fine-tuned base model — and
train a fresh model (from the same initialisation as every other defense) on the clean set plus every successful
adversarial example, each with the label of its clean original (``defense.aug_data: clean+adv``; ``adv``: the
adversarial examples only, the official ``aug_ratio 1.0``).

**MixADA** (Si et al. 2021, "Better Robustness by More Coverage"): the same augmented set, and per batch the loss
``CE(batch) + mix_weight * KL(mixed targets || p(mixed))``: a random permutation of the batch pairs examples (clean
with clean, clean with adversarial, adversarial with adversarial: the pairs the official code draws), both run up to
layer ``m`` (drawn from ``mix_layers``, 1-based; 0 = the embedding output), the hidden states are interpolated with
``lambda ~ Beta(mix_alpha, mix_alpha)``, the rest of the encoder runs on the mixture, and the target is the same
interpolation of the one-hot labels.

The victim is ``defense.aug_victim`` (a run folder), else ``model.init_from``, else a base model fine-tuned first
into ``OUT/victim`` with the same settings. The cost is bounded by ``defense.aug_fraction`` / ``aug_max_examples``
(training texts with > 4 words, sampled with ``aug_seed``). The augmented set is cached in ``OUT/augment`` under a
fingerprint of the victim, the texts and the protocol (a rerun reuses it; attack records resume after a kill).

DDP: before the first fit (no process group yet) rank 0 builds the set alone and the ranks Lightning launches later
read its cache; once a process group exists, each rank attacks its shard and the shards are all-gathered, so every
rank trains on the same list (no rank waits on a file, none computes a different set).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from tenfold_core.io import is_rank_zero

__all__ = [
    "AUGMENTED",
    "aug_protocol",
    "select_for_attack",
    "adversarial_examples",
    "augmented_training_set",
    "mixed_logits",
    "mixup_loss",
]

AUGMENTED = ("ada", "mixada")


def aug_protocol(defense, n_examples: int):
    """The attack protocol used on the training set (the benchmark protocol's knobs, ``aug_*`` fields)."""
    from tenfold_core.attack import USE_THRESHOLD, AttackProtocol

    thr = USE_THRESHOLD if defense.aug_similarity < 0 else defense.aug_similarity
    return AttackProtocol(defense.aug_recipe, k=defense.aug_k, max_modification_rate=defense.aug_max_rate,
                          similarity_threshold=thr, query_factor=defense.aug_query_factor,
                          n_examples=max(1, n_examples), seed=defense.aug_seed)  # fmt: skip


def select_for_attack(texts, defense) -> list[int]:
    """Indices of the training texts to attack: ``aug_fraction`` of those with > 4 words (the official filter),
    capped at ``aug_max_examples`` (0: no cap), sampled without replacement with ``aug_seed``, in sorted order."""
    from tenfold_core.attack import sample_examples

    pool = sum(1 for t in texts if len(t.split()) >= 5)
    n = int(round(defense.aug_fraction * pool))
    if defense.aug_max_examples > 0:
        n = min(n, defense.aug_max_examples)
    return sorted(sample_examples(texts, n, 5, defense.aug_seed)) if n > 0 else []


def adversarial_examples(model, tokenizer, texts, labels, indices, defense, *, synthetic=False, out=None,
                         width: int = 8, max_length: int | None = None) -> list[dict]:  # fmt: skip
    """Attack ``texts[indices]``; returns ``[{index, text, label}]`` for every successful attack (the adversarial
    text with the clean example's true label), in index order. ``out``: resumable per-example records."""
    from tenfold_core.attack import GreedyWordSwapAttack, Victim, run_attack
    from tenfold_core.attack.evaluation import default_local_encoder, resolve_synonyms

    if not indices:
        return []
    if max_length is None and hasattr(model, "net"):  # a DefendedClassifier: its training length
        max_length = model.config.max_length
    victim = Victim(model, tokenizer, max_length=max_length)
    synonyms = resolve_synonyms(defense.aug_synonyms, victim, synthetic=synthetic, k=defense.aug_k)
    encoder = default_local_encoder(victim, synonyms)
    attack = GreedyWordSwapAttack(victim, synonyms, aug_protocol(defense, len(indices)), encoder)
    records = run_attack(attack, texts, labels, out, indices=indices, batch_examples=width)
    adv = [{"index": int(r["index"]), "text": r["perturbed"], "label": int(labels[r["index"]])}
           for r in records if r["status"] == "succeeded" and r.get("perturbed")]  # fmt: skip
    return sorted(adv, key=lambda a: a["index"])


# ------------------------------------------------------------------------------------------- the augmented set
def _victim_dir(cfg) -> Path | None:
    d = cfg.defense.aug_victim or cfg.model.init_from
    return Path(d) if d else None


def _train_victim(cfg) -> Path:
    """No victim given: fine-tune a base model first (same settings) into ``OUT/victim`` (reused when finished)."""
    from tenfold_core.io import write_json
    from textdefender.train import train

    vdir = Path(cfg.train.out_dir) / "victim"
    if not (vdir / "train.json").is_file():
        vcfg = dataclasses.replace(cfg, defense=dataclasses.replace(cfg.defense, name="base"),
                                   train=dataclasses.replace(cfg.train, out_dir=str(vdir)))  # fmt: skip
        info = train(vcfg)
        if not (not is_rank_zero()):
            write_json(vdir / "train.json", info)
    return vdir


def _fingerprint(vdir: Path, texts, labels, indices, defense) -> str:
    h = hashlib.sha256()
    weights = vdir / "model.safetensors"
    st = weights.stat() if weights.is_file() else None
    meta = {
        "victim": str(vdir.resolve()),
        "victim_config": (vdir / "config.json").read_text() if (vdir / "config.json").is_file() else "",
        "victim_weights": [st.st_size, st.st_mtime_ns] if st else None,
        "protocol": aug_protocol(defense, len(indices)).to_dict(),
        "synonyms": defense.aug_synonyms,
        "indices": indices,
    }
    h.update(json.dumps(meta, sort_keys=True).encode())
    for t, y in zip(texts, labels):
        h.update(f"{y}\t{t}\n".encode())
    return h.hexdigest()[:16]


def _read_cache(folder: Path, fp: str) -> list[dict] | None:
    summary = folder / "summary.json"
    if not summary.is_file():
        return None
    try:
        meta = json.loads(summary.read_text())
    except json.JSONDecodeError:
        return None
    if meta.get("fingerprint") != fp:
        return None
    lines = (folder / "adversarial.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(ln) for ln in lines if ln.strip()]


def _write_cache(folder: Path, fp: str, adv: list[dict], n_attacked: int, victim: Path) -> None:
    from tenfold_core.io import atomic_write_text, write_json

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        folder / "adversarial.jsonl", "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in adv)
    )
    write_json(folder / "summary.json", {"fingerprint": fp, "victim": str(victim), "attacked": n_attacked,
                                         "succeeded": len(adv)})  # fmt: skip


def augmented_training_set(cfg, data) -> tuple[list[str], list[int], dict]:
    """``(texts, labels, info)`` of the training set ADA / MixADA trains on (see the module docstring)."""
    from tenfold_core.errors import ConfigError, DataError
    from textdefender.defenses import _dist
    from textdefender.evaluate import load_trained

    d = cfg.defense
    texts, labels = list(data.train.texts), [int(y) for y in data.train.labels]
    dist = _dist()
    vdir = _victim_dir(cfg)
    if vdir is None:
        vdir = _train_victim(cfg)
        dist = _dist()  # the victim's fit has started the process group under DDP
    if dist is not None:
        dist.barrier()  # rank 0 has finished writing the victim's weights
    if not (vdir / "config.json").is_file():
        raise ConfigError(f"defense.aug_victim: {vdir} is not a run folder written by textdefender train")
    indices = select_for_attack(texts, d)
    folder = Path(cfg.train.out_dir) / "augment"
    fp = _fingerprint(vdir, texts, labels, indices, d)
    adv = _read_cache(folder, fp)  # every rank reads before any rank writes (written only after the gather)
    if adv is None:
        synthetic = cfg.data.source == "synthetic"
        if dist is not None:
            rank, world = dist.get_rank(), dist.get_world_size()
            model, tok, _ = load_trained(vdir)
            shard = indices[rank::world]
            mine = adversarial_examples(model, tok, texts, labels, shard, d, synthetic=synthetic,
                                        out=folder / f"records-{fp}-rank{rank}of{world}.jsonl")  # fmt: skip
            parts: list = [None] * world
            dist.all_gather_object(parts, mine)
            adv = sorted((a for p in parts for a in p), key=lambda a: a["index"])
            if rank == 0:
                _write_cache(folder, fp, adv, len(indices), vdir)
        elif not is_rank_zero():
            raise DataError(
                f"{folder}: no augmented set for this run (rank 0 writes it before the ranks start)"
            )
        else:
            model, tok, _ = load_trained(vdir)
            adv = adversarial_examples(model, tok, texts, labels, indices, d, synthetic=synthetic,
                                       out=folder / f"records-{fp}.jsonl")  # fmt: skip
            _write_cache(folder, fp, adv, len(indices), vdir)
    info = {"aug_victim": str(vdir), "aug_attacked": len(indices), "aug_added": len(adv)}
    adv_texts, adv_labels = [a["text"] for a in adv], [int(a["label"]) for a in adv]
    if d.aug_data == "adv":
        if not adv:
            raise DataError(
                f"defense.aug_data adv: no attack on the {len(indices)} attacked examples succeeded"
            )
        return adv_texts, adv_labels, info
    return texts + adv_texts, labels + adv_labels, info


# ------------------------------------------------------------------------------------------------ MixADA
def _encoder_layers(model):
    from tenfold_core.errors import ConfigError

    net = getattr(model, "net", model)
    base = getattr(net, "base_model", None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if base is None or layers is None or not hasattr(base, "embeddings"):
        raise ConfigError(
            f"defense.name mixada: {type(net).__name__} has no BERT-style embeddings + encoder.layer to mix in"
        )
    return net, base, layers


def mixed_logits(model, ids1, mask1, ids2, mask2, lam: float, layer: int) -> torch.Tensor:
    """Logits of the hidden-state mixture ``lam * h(x1) + (1 - lam) * h(x2)`` taken after encoder layer ``layer``
    (1-based; 0 = the embedding output; above the encoder's depth: its last layer). Both inputs run below the mix;
    above it the mixture runs with ``mask1`` (the two halves of one batch are padded to the same length)."""
    net, base, layers = _encoder_layers(model)
    layer = max(0, min(int(layer), len(layers)))
    b = ids1.shape[0]
    target = base.embeddings if layer == 0 else layers[layer - 1]

    def mix(module, args, output):
        h = output[0] if isinstance(output, tuple) else output
        m = lam * h[:b] + (1.0 - lam) * h[b:]
        h = torch.cat(
            [m, m], 0
        )  # the second half keeps the batch shape; only the first half's logits are used
        return (h, *output[1:]) if isinstance(output, tuple) else h

    handle = target.register_forward_hook(mix)
    try:
        out = net(input_ids=torch.cat([ids1, ids2]), attention_mask=torch.cat([mask1, mask2]))
    finally:
        handle.remove()
    return out.logits[:b]


def mixup_loss(model, input_ids, attention_mask, labels, defense, num_labels: int | None = None):
    """MixADA's mixup term for one batch: ``KL(lam * y + (1 - lam) * y[perm] || softmax(mixed logits))``
    (batch mean), with ``lam ~ Beta(alpha, alpha)``, a random permutation ``perm`` and a layer drawn from
    ``defense.mix_layers`` (torch's global RNG: seeded by the run)."""
    b = input_ids.shape[0]
    perm = torch.randperm(b, device="cpu").to(input_ids.device)
    alpha = torch.tensor(float(defense.mix_alpha))
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    layers = list(defense.mix_layers)
    layer = layers[int(torch.randint(len(layers), (1,)))]
    logits = mixed_logits(model, input_ids, attention_mask, input_ids[perm], attention_mask[perm], lam, layer)
    c = num_labels or logits.shape[-1]
    y = F.one_hot(labels, c).to(logits.dtype)
    target = lam * y + (1.0 - lam) * y[perm]
    return F.kl_div(F.log_softmax(logits, -1), target, reduction="batchmean")
