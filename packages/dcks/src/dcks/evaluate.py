"""``dcks evaluate`` and ``dcks chat``: the paper's automatic metrics through ``tenfold_core.metrics``, and replies
with their predicted emotion and ranked relations.

Metrics (fractions; the papers print x100 for accuracy, Dist and BLEU):
- ``ppl_corpus`` = exp(total NLL / total reply tokens) (MoEL/CEM's definition) and ``ppl_mean_sentence`` = mean over
  replies of exp(NLL / tokens) (the DCKS code's definition) — both, labelled, since papers in this line mix them;
- ``emotion_acc`` over examples (and ``emotion_acc_batch_mean``, the code's mean of per-batch accuracies);
- ``dist_1``/``dist_2`` (corpus level), ``bleu_1..4`` (nltk corpus BLEU, smoothing method1 eps 1e-12), ``rouge_l``
  (mean sentence LCS F1), on generated replies (beam 5, repetition penalty 1.5 by default).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

from dcks.config import DataConfig, DecodeConfig, EvaluateCommand
from dcks.data import DialogueDataset, Example, load_dialogues
from dcks.model import DCKS
from dcks.train import MODEL_KEYS
from tenfold_core.cli import build_config
from tenfold_core.errors import ConfigError, DataError
from tenfold_core.io import write_json
from tenfold_core.metrics import corpus_bleu_n, corpus_perplexity, distinct_n, mean_sentence_perplexity
from tenfold_core.metrics.generation import rouge_l
from tenfold_core.models import load_run

__all__ = ["load_dcks", "evaluate_examples", "run_evaluate", "respond", "run_chat"]


def load_dcks(run_dir: str | Path) -> tuple[DCKS, Any, dict[str, Any]]:
    """The trained network (eval mode), its tokenizer and the run's config.json."""
    from transformers import AutoTokenizer

    run = load_run(run_dir)
    tok_dir = Path(run_dir) / "tokenizer"
    if not tok_dir.is_dir():
        raise ConfigError(f"{run_dir}: no tokenizer/ folder (not a dcks training run)")
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    return run.model, tok, run.config


def _decode_texts(tok, seqs: torch.Tensor) -> list[str]:
    return [t.strip() for t in tok.batch_decode(seqs, skip_special_tokens=True)]


@torch.no_grad()
def evaluate_examples(
    model: DCKS,
    tok,
    rows: list[Example],
    data_cfg: DataConfig,
    emotions: list[str],
    decode: DecodeConfig | None = None,
    batch_size: int = 32,
    generate: bool = True,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Metrics and per-example generations (reply, predicted emotion, relations ranked best first)."""
    model.eval()
    ds = DialogueDataset(rows, tok, data_cfg, emotions, model.relations)
    start = model.bart.config.decoder_start_token_id
    nll, ntok, correct, batch_accs, gens = [], [], 0, [], []
    for lo in range(0, len(ds), batch_size):
        batch = ds.collate([ds[i] for i in range(lo, min(lo + batch_size, len(ds)))], decoder_start=start)
        logits, enc = model(**{k: batch[k] for k in MODEL_KEYS}, emotion_labels=None)
        labels = batch["labels"]
        ce = torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]),
            labels.reshape(-1),
            ignore_index=-100,
            reduction="none",
        ).view(labels.shape)
        mask = labels != -100
        nll += (ce * mask).sum(1).tolist()
        ntok += mask.sum(1).tolist()
        pred = enc.emotion_logits.argmax(-1)
        hit = pred == batch["emotion_labels"]
        correct += int(hit.sum())
        batch_accs.append(float(hit.float().mean()))
        out = None
        if generate:
            out = model.generate(
                batch["input_ids"], batch["attention_mask"], batch["knowledge_input_ids"],
                batch["knowledge_attention_mask"], decode,
            )  # fmt: skip
            replies = _decode_texts(tok, out["sequences"])
        for j in range(len(pred)):
            row = rows[lo + j]
            ranking = (out["relation_ranking"] if out is not None else enc.relation_ranking)[j].tolist()
            gens.append({
                "id": row.id, "context": row.context, "reference": row.target,
                "reply": replies[j] if generate else None, "emotion": row.emotion,
                "predicted_emotion": emotions[int(pred[j])],
                "ranked_relations": [model.relations[k] for k in ranking],
            })  # fmt: skip
    metrics: dict[str, float] = {
        "n": float(len(rows)),
        "ppl_corpus": corpus_perplexity(nll, ntok),
        "ppl_mean_sentence": mean_sentence_perplexity(nll, ntok),
        "emotion_acc": correct / max(len(rows), 1),
        "emotion_acc_batch_mean": sum(batch_accs) / max(len(batch_accs), 1),
    }
    for r in model.relations:  # how often each relation is ranked first (the interpretability output)
        metrics[f"rank1_share_{r}"] = sum(g["ranked_relations"][0] == r for g in gens) / max(len(gens), 1)
    if generate:
        hyps = [g["reply"] for g in gens]
        refs = [g["reference"] for g in gens]
        metrics.update(dist_1=distinct_n(hyps, 1), dist_2=distinct_n(hyps, 2), rouge_l=rouge_l(hyps, refs))
        for n in (1, 2, 3, 4):
            metrics[f"bleu_{n}"] = corpus_bleu_n(hyps, refs, n)
    return metrics, gens


def _run_data_config(cmd_data: DataConfig | None, config: dict[str, Any], run_dir: str) -> DataConfig:
    saved = config.get("data") or {}
    if cmd_data is None:
        return build_config(DataConfig, saved, source=f"{run_dir}/config.json 'data'")
    for key in ("max_source_len", "max_knowledge_len", "utterance_separator"):
        if key in saved and getattr(cmd_data, key) != saved[key]:
            raise ConfigError(
                f"data.{key}={getattr(cmd_data, key)!r} differs from the run's training setting {saved[key]!r}"
            )
    return cmd_data


def run_evaluate(cmd: EvaluateCommand) -> dict[str, Any]:
    torch.manual_seed(cmd.seed)
    model, tok, config = load_dcks(cmd.run)
    data_cfg = _run_data_config(cmd.data, config, cmd.run)
    data = load_dialogues(data_cfg)
    emotions = list(config.get("emotions") or data.emotions)
    rows = data.split(cmd.split)
    if cmd.max_examples is not None:
        rows = rows[: cmd.max_examples]
    metrics, gens = evaluate_examples(
        model, tok, rows, data_cfg, emotions, cmd.decode, data_cfg.eval_batch_size, generate=cmd.generate
    )
    out = Path(cmd.out or Path(cmd.run) / f"eval_{cmd.split}")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", {"split": cmd.split, **metrics})
    with (out / "generations.jsonl").open("w", encoding="utf-8") as fh:
        for g in gens:
            fh.write(json.dumps(g) + "\n")
    return {"split": cmd.split, "out": str(out), **metrics}


# ------------------------------------------------------------------------------------------------------ chat
def respond(model: DCKS, tok, context: list[str], knowledge: dict[str, str], data_cfg: DataConfig,
            emotions: list[str], decode: DecodeConfig | None = None) -> dict[str, Any]:  # fmt: skip
    """One reply with its predicted emotion and the relations ranked best first."""
    row = Example("chat", context, "", emotions[0], {r: knowledge.get(r, "none") for r in model.relations})
    ds = DialogueDataset([row], tok, data_cfg, emotions, model.relations)
    b = ds.collate([ds[0]], decoder_start=model.bart.config.decoder_start_token_id)
    out = model.generate(b["input_ids"], b["attention_mask"], b["knowledge_input_ids"],
                         b["knowledge_attention_mask"], decode)  # fmt: skip
    probs = out["emotion_probs"][0]
    return {
        "reply": _decode_texts(tok, out["sequences"])[0],
        "emotion": emotions[int(out["emotion"][0])],
        "emotion_prob": float(probs.max()),
        "ranked_relations": [model.relations[k] for k in out["relation_ranking"][0].tolist()],
    }


def _parse_line(line: str, relations: list[str]) -> tuple[list[str], dict[str, str]]:
    """``utterance </s> utterance ||| xReact=feels sad; xIntent=to ...`` (knowledge optional; missing = none)."""
    ctx, _, know = line.partition("|||")
    knowledge = {}
    for part in know.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            if k.strip() not in relations:
                raise DataError(f"unknown relation {k.strip()!r} (expected one of {', '.join(relations)})")
            knowledge[k.strip()] = v.strip()
    return [u.strip() for u in ctx.split("</s>") if u.strip()], knowledge


def _read_chat_input(path: str, relations: list[str]) -> list[tuple[list[str], dict[str, str]]]:
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{p}: cannot read ({getattr(e, 'strerror', None) or 'not UTF-8 text'})") from None
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{p}:{i}: invalid JSON ({e.msg})") from None
        ctx = obj.get("context") if isinstance(obj, dict) else None
        ctx = [ctx] if isinstance(ctx, str) else ctx
        if not isinstance(ctx, list) or not ctx or not all(isinstance(u, str) for u in ctx):
            raise DataError(f"{p}:{i}: field 'context' must be a string or a list of strings")
        know = obj.get("knowledge", {})
        if not isinstance(know, dict) or any(k not in relations for k in know):
            raise DataError(f"{p}:{i}: field 'knowledge' must map relations ({', '.join(relations)}) to text")
        out.append((ctx, {k: " . ".join(v) if isinstance(v, list) else str(v) for k, v in know.items()}))
    return out


def run_chat(cmd) -> list[dict[str, Any]]:
    model, tok, config = load_dcks(cmd.run)
    data_cfg = build_config(DataConfig, config.get("data") or {}, source=f"{cmd.run}/config.json 'data'")
    emotions = list(config["emotions"])
    results = []
    if cmd.input:
        for i, (ctx, know) in enumerate(_read_chat_input(cmd.input, model.relations), 1):
            res = respond(model, tok, ctx, know, data_cfg, emotions, cmd.decode)
            results.append({"line": i, **res})
            print(json.dumps(results[-1]))
        return results
    print("dcks chat: type a context (utterances separated by </s>; optional '||| xReact=...; xNeed=...'); "
          "empty line or Ctrl-D quits", file=sys.stderr)  # fmt: skip
    for line in sys.stdin:
        if not line.strip():
            break
        ctx, know = _parse_line(line.strip(), model.relations)
        res = respond(model, tok, ctx, know, data_cfg, emotions, cmd.decode)
        results.append(res)
        print(json.dumps(res), flush=True)
    return results
