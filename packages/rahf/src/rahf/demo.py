"""``rahf demo``: the synthetic preference language (preferred = polite and correct), a tiny Llama SFT'd on both
responses, then RAHF-SCIT (SCIT + align), RAHF-DUAL (two SFT models + align) and DPO on the same pairs, an alpha sweep
of the SCIT align step (alpha = 0 must be a no-op), samples; metrics.json, report.md, compare.png, alpha.png."""

from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path

from rahf.config import DemoCommand

__all__ = ["demo"]


def _max_weight_change(a_dir: str, b_dir: str) -> float:
    from rahf.model import load_policy

    a, _ = load_policy(a_dir)
    b, _ = load_policy(b_dir)
    sb = b.state_dict()
    return max(float((v - sb[k]).abs().max()) for k, v in a.state_dict().items())


def demo(cfg: DemoCommand) -> dict:
    from rahf.compare import compare
    from rahf.data import get_splits
    from rahf.evaluate import samples
    from rahf.model import load_policy
    from rahf.train import align
    from tenfold_core.cli import load_preset
    from tenfold_core.config import OptimConfig, TrainConfig
    from tenfold_core.report import markdown_table, new_figure, write_demo_outputs

    t0 = time.perf_counter()
    out = Path(cfg.out)
    base_cfg = load_preset("rahf", "demo", "compare")
    runs = []
    for s in range(cfg.seeds):
        c = dataclasses.replace(base_cfg, out=str(out / f"seed{s}"), seed=s, methods=list(cfg.methods),
                                model=dataclasses.replace(base_cfg.model, seed=s))  # fmt: skip
        runs.append(compare(c))
    first = runs[0]
    metrics: dict = {}
    keys = [k for k in first["metrics"] if k != "compare_seconds"]
    for k in keys:
        vals = [r["metrics"][k] for r in runs if k in r["metrics"]]
        metrics[k] = statistics.fmean(vals)
        if len(vals) > 1:
            metrics[k + "_std"] = statistics.stdev(vals)
    metrics["seeds"] = cfg.seeds

    # alpha sweep on the SCIT model of seed 0 (the align step only; alpha = 0 must leave the model unchanged)
    sweep = []
    align_base = load_preset("rahf", "demo", "align")
    scit_dir = str(out / "seed0" / "scit")
    if "scit" in cfg.methods:
        from rahf.compare import _eval

        for a in cfg.alphas:
            reuse = float(a) == float(base_cfg.alpha) and "scit_align_loss_first" in first["metrics"]
            ac = dataclasses.replace(
                align_base, source=scit_dir, data=base_cfg.data, model=base_cfg.model,
                align=dataclasses.replace(align_base.align, alpha=float(a), target_layers=list(base_cfg.target_layers)),
                optim=OptimConfig(lr=base_cfg.align_lr),
                train=TrainConfig(out_dir=str(out / "seed0" / "scit_align") if reuse else str(out / "alpha" / f"a{a:g}"), max_epochs=align_base.train.max_epochs,
                                  progress_bar=False, loggers=[], monitor=None, accelerator=base_cfg.accelerator,
                                  devices="1", log_every_n_steps=1000),
            )  # fmt: skip
            m0 = first["metrics"]
            info = ({"cos_dA_v": m0["scit_cos_dA_v"], "align_loss_first": m0["scit_align_loss_first"],
                     "align_loss_last": m0["scit_align_loss_last"]} if reuse else align(ac))  # fmt: skip
            ev = _eval(ac.train.out_dir, base_cfg)
            sweep.append({"alpha": float(a), "win_rate": ev["win_rate"], "cos_dA_v": info["cos_dA_v"],
                          "align_loss_first": info["align_loss_first"], "align_loss_last": info["align_loss_last"]})  # fmt: skip
            metrics[f"win_rate_alpha_{a:g}"] = ev["win_rate"]
            if a == 0:
                metrics["alpha0_max_weight_change"] = _max_weight_change(ac.train.out_dir, scit_dir)
        metrics["scit_only_win_rate"] = _eval(scit_dir, base_cfg)["win_rate"]

    test = get_splits(base_cfg.data)["test"][:4]
    prompts = [p.prompt for p in test]
    sample_rows = []
    for name, d in [("base (SFT)", first["init"])] + [(m, str(out / "seed0" / f"{m}_align" if m != "dpo" else
                                                                      out / "seed0" / "dpo")) for m in cfg.methods]:  # fmt: skip
        model, tok = load_policy(d)
        for p, g in zip(prompts, samples(model, tok, prompts, base_cfg.data, 12), strict=True):
            sample_rows.append({"model": name, "prompt": p, "response": g})
    metrics["demo_seconds"] = time.perf_counter() - t0

    fig = new_figure(5, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    names = [r["method"] for r in first["rows"]]
    means = [metrics.get("base_win_rate")] + [metrics.get(f"{m}_win_rate") for m in cfg.methods]
    errs = [metrics.get("base_win_rate_std", 0)] + [metrics.get(f"{m}_win_rate_std", 0) for m in cfg.methods]
    ax.bar(names, means, yerr=errs, color="tab:blue")
    ax.axhline(0.5, color="grey", ls="--", lw=1)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("held-out win rate")
    figs = {"compare": fig}
    if sweep:
        f2 = new_figure(4.5, 3.2)
        ax2 = f2.add_subplot(1, 1, 1)
        ax2.plot([r["alpha"] for r in sweep], [r["win_rate"] for r in sweep], "o-")
        ax2.axhline(metrics["base_win_rate"], color="grey", ls="--", lw=1, label="SFT base")
        ax2.set_xlabel("alpha")
        ax2.set_ylabel("win rate (SCIT + align)")
        ax2.legend()
        figs["alpha"] = f2
    report = [
        "# rahf demo\n",
        "Synthetic preference language (preferred = polite and correct, dispreferred = rude and off by one), a tiny "
        f"Llama, {cfg.seeds} seed(s). Win rate = held-out pairs where log p(chosen) > log p(rejected).\n",
        "## Methods (seed 0)\n", first["table"],
        "\n## Alpha sweep (SCIT + align)\n", markdown_table(sweep) if sweep else "_(scit not run)_\n",
        "\n## Samples (greedy)\n", markdown_table(sample_rows, ["model", "prompt", "response"]),
    ]  # fmt: skip
    write_demo_outputs(out, metrics, "\n".join(report), figs)
    return metrics
