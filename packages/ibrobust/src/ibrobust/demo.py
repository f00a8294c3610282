"""``ibrobust demo``: synthetic sentiment data, base vs IB vs IB+FreeLB (tiny BERT), 100 attacked examples each
(deterministic model), plus the sampled model with and without EOT; metrics.json / report.md / plot."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from ibrobust.config import DemoCommand

__all__ = ["demo", "pretrain", "VARIANTS"]

# name -> (model overrides, objective overrides, adv overrides)
VARIANTS = {
    "base": ({"bottleneck": False}, {"beta": 0.0}, {"method": "none"}),
    "ib": ({"bottleneck": True}, {}, {"method": "none"}),
    "ib_freelb": ({"bottleneck": True}, {}, {"method": "freelb"}),
}


def pretrain(base_cfg, out_dir, seed: int, epochs: int, lr: float = 2e-3) -> dict:
    """Train a clean plain classifier (no bottleneck, no adversary): the stand-in for a pre-trained encoder that the
    demo's models fine-tune from (``model.init_from``)."""
    from ibrobust.train import train

    pcfg = dataclasses.replace(
        base_cfg, model=dataclasses.replace(base_cfg.model, bottleneck=False, init_from=""),
        objective=dataclasses.replace(base_cfg.objective, beta=0.0), adv=dataclasses.replace(base_cfg.adv, method="none"),
        train=dataclasses.replace(base_cfg.train, out_dir=str(out_dir), seed=seed, max_epochs=epochs),
        optim=dataclasses.replace(base_cfg.optim, lr=lr),
    )  # fmt: skip
    return train(pcfg)


def demo(cfg: DemoCommand) -> dict:
    import numpy as np

    from ibrobust.data import load_data
    from ibrobust.evaluate import attack_model, clean_accuracy, load_trained
    from ibrobust.train import train
    from tenfold_core.cli import load_preset
    from tenfold_core.report import markdown_table, new_figure, write_demo_outputs

    out = Path(cfg.out)
    base_cfg = load_preset("ibrobust", "demo", "train")
    attack_cfg = load_preset("ibrobust", "demo", "attack").attack
    metrics: dict = {}
    rows = []
    per_seed: dict[str, list[dict]] = {k: [] for k in VARIANTS}
    data = load_data(base_cfg.data)
    test = data.test
    for seed in range(cfg.seeds):
        pre = out / f"pretrain-seed{seed}"
        if cfg.pretrain_epochs > 0:  # a clean tiny encoder stands in for pre-trained BERT
            metrics[f"pretrain_seconds_seed{seed}"] = pretrain(base_cfg, pre, seed, cfg.pretrain_epochs)[
                "seconds"
            ]
        for name, (m_over, o_over, a_over) in VARIANTS.items():
            if cfg.pretrain_epochs > 0:
                m_over = {**m_over, "init_from": str(pre)}
            run = out / f"{name}-seed{seed}"
            tcfg = dataclasses.replace(
                base_cfg,
                model=dataclasses.replace(base_cfg.model, **m_over),
                objective=dataclasses.replace(base_cfg.objective, **o_over),
                adv=dataclasses.replace(base_cfg.adv, **a_over),
                train=dataclasses.replace(base_cfg.train, out_dir=str(run), seed=seed),
            )
            t0 = time.perf_counter()
            info = train(tcfg)
            secs = time.perf_counter() - t0
            model, tok, _ = load_trained(run)
            clean = clean_accuracy(model, tok, test.texts, test.labels, max_length=model.config.max_length)
            modes = ["deterministic", "sampled", "eot"] if model.config.bottleneck else ["deterministic"]
            att = attack_model(model, tok, test.texts, test.labels, attack_cfg, modes, synthetic=True,
                               out_dir=run / "attack")  # fmt: skip
            r = {"clean": att["deterministic"]["clean_acc"], "aua": att["deterministic"]["aua"],
                 "suc": att["deterministic"]["success_rate"], "queries": att["deterministic"]["mean_queries"],
                 "test_acc_det": clean["clean_acc_deterministic"], "seconds": secs,
                 "train_seconds": info["seconds"]}  # fmt: skip
            if "clean_acc_sampled" in clean:
                r["test_acc_sampled"] = clean["clean_acc_sampled"]
                r["sampled_gap"] = clean["sampled_minus_deterministic"]
                r["aua_sampled"] = att["sampled"]["aua"]
                r["suc_sampled"] = att["sampled"]["success_rate"]
                r["aua_eot"] = att["eot"]["aua"]
                r["suc_eot"] = att["eot"]["success_rate"]
            per_seed[name].append(r)
            protocol = att["deterministic"]["protocol"]
    for name, rs in per_seed.items():
        for key in rs[0]:
            vals = [r[key] for r in rs]
            metrics[f"{name}_{key}"] = float(np.mean(vals))
            if cfg.seeds > 1:
                metrics[f"{name}_{key}_std"] = float(np.std(vals))
        rows.append({"model": name, "Clean%": metrics[f"{name}_clean"], "AUA%": metrics[f"{name}_aua"],
                     "Suc%": metrics[f"{name}_suc"], "#Query": metrics[f"{name}_queries"],
                     "sampled AUA%": metrics.get(f"{name}_aua_sampled"), "EOT AUA%": metrics.get(f"{name}_aua_eot"),
                     "seconds": metrics[f"{name}_seconds"]})  # fmt: skip
    metrics["n_attacked"] = attack_cfg.n_examples
    metrics["seeds"] = cfg.seeds
    metrics["ib_freelb_minus_base_aua"] = metrics["ib_freelb_aua"] - metrics["base_aua"]
    fig = new_figure(6, 3.5)
    ax = fig.subplots()
    names = list(per_seed)
    x = np.arange(len(names))
    ax.bar(x - 0.2, [metrics[f"{n}_clean"] for n in names], 0.4, label="Clean%")
    ax.bar(x + 0.2, [metrics[f"{n}_aua"] for n in names], 0.4, label="AUA%")
    ax.set_xticks(x, names)
    ax.legend()
    ax.set_title(f"{attack_cfg.recipe}, {attack_cfg.n_examples} examples, {cfg.seeds} seed(s)")
    report = (
        "# ibrobust demo\n\nSynthetic sentiment language, tiny BERT, base vs IB vs IB+FreeLB; deterministic "
        f"model (z = mu) attacked; sampled model attacked with one draw per query and with EOT.\n\n"
        f"Protocol: {protocol}\n\n{markdown_table(rows)}\n"
    )
    write_demo_outputs(out, metrics, report, {"clean_vs_aua": fig})
    return metrics
