"""``rahf compare``: RAHF-SCIT, RAHF-DUAL and DPO from the same SFT model on the same pairs, one table, one plot.

Data use (as in the paper): SCIT / DUAL step 1 on the rm split, the align step on the ppo split; DPO on rm + ppo.
Every method is evaluated on the same held-out test pairs. Memory per method: the peak resident-set growth while it
runs (sampled every 5 ms) and the bytes of model state alive at once (weights of every model held + the cache).
"""

from __future__ import annotations

import dataclasses
import gc
import os
import threading
import time
from pathlib import Path

from rahf.config import (
    AlignCommand,
    AlignLossConfig,
    CompareCommand,
    DPOCommand,
    DualCommand,
    SCITCommand,
    SCITLossConfig,
    SFTCommand,
)
from tenfold_core.config import OptimConfig, TrainConfig

__all__ = ["compare", "PeakRSS", "rss_bytes"]


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakRSS:
    """Context manager: ``peak`` = the highest RSS seen minus the RSS at entry (bytes)."""

    def __init__(self, every: float = 0.005):
        self.every, self.peak, self._stop = every, 0, threading.Event()

    def __enter__(self):
        self.start = rss_bytes()
        self._top = self.start
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self._top = max(self._top, rss_bytes())
            self._stop.wait(self.every)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self._top = max(self._top, rss_bytes())
        self.peak = self._top - self.start


def _train(out: Path, epochs: int, seed: int, accelerator: str) -> TrainConfig:
    return TrainConfig(out_dir=str(out), max_epochs=epochs, seed=seed, accelerator=accelerator, devices="1",
                       progress_bar=False, loggers=[], monitor=None, log_every_n_steps=1000)  # fmt: skip


def _eval(run_dir: str, cfg: CompareCommand, ref_ppl: float | None = None) -> dict:
    from rahf.data import get_splits, neutral_texts
    from rahf.evaluate import perplexity, win_rate
    from rahf.model import load_policy

    model, tok = load_policy(run_dir)
    test = get_splits(cfg.data)["test"]
    neutral = neutral_texts() if cfg.data.source == "synthetic" else [(p.prompt, p.chosen) for p in test[:64]]
    out = {
        "win_rate": win_rate(model, tok, test, cfg.data),
        "perplexity": perplexity(model, tok, neutral, cfg.data),
    }
    if ref_ppl:
        out["ppl_ratio"] = out["perplexity"] / ref_ppl
    return out


def compare(cfg: CompareCommand) -> dict:
    from rahf.model import param_bytes
    from rahf.train import align, dpo, dual, scit, sft
    from tenfold_core.io import write_json
    from tenfold_core.report import markdown_table, new_figure, save_figure

    out = Path(cfg.out)
    t_all = time.perf_counter()
    bad = [m for m in cfg.methods if m not in ("scit", "dual", "dpo")]
    if bad:
        from tenfold_core.errors import ConfigError

        raise ConfigError(f"methods: unknown method {bad[0]!r} (known: scit, dual, dpo)")
    opt = OptimConfig(lr=cfg.sft_lr, schedule="cosine", warmup_ratio=0.1)
    init = cfg.init
    if init is None:
        init = str(out / "sft")
        sft(SFTCommand(model=cfg.model, data=cfg.data, optim=opt, train=_train(out / "sft", cfg.sft_epochs, cfg.seed,
                                                                                cfg.accelerator)))  # fmt: skip
    base = _eval(init, cfg)
    from rahf.model import load_policy

    one_model = param_bytes(load_policy(init)[0])
    rows = [{"method": "base (SFT)", "win_rate": base["win_rate"], "ppl_ratio": 1.0, "seconds": 0.0,
             "peak_rss_mb": 0.0, "model_state_mb": one_model / 2**20}]  # fmt: skip
    metrics: dict = {"base_win_rate": base["win_rate"], "base_perplexity": base["perplexity"]}
    align_opt = OptimConfig(lr=cfg.align_lr)
    for method in cfg.methods:
        gc.collect()
        t0 = time.perf_counter()
        info: dict = {}
        with PeakRSS() as mem:
            if method == "scit":
                s1 = scit(SCITCommand(model=cfg.model, data=cfg.data, optim=opt, init=init, scit=SCITLossConfig(),
                                      train=_train(out / "scit", cfg.step1_epochs, cfg.seed, cfg.accelerator)))  # fmt: skip
                info = align(AlignCommand(
                    model=cfg.model, data=cfg.data, optim=align_opt, source=s1["out_dir"],
                    align=AlignLossConfig(alpha=cfg.alpha, target_layers=list(cfg.target_layers)),
                    train=_train(out / "scit_align", cfg.align_epochs, cfg.seed, cfg.accelerator)))  # fmt: skip
                final, held = out / "scit_align", one_model + info["cache_bytes"]
            elif method == "dual":
                d1 = dual(DualCommand(model=cfg.model, data=cfg.data, optim=opt, init=init,
                                      train=_train(out / "dual", cfg.step1_epochs, cfg.seed, cfg.accelerator)))  # fmt: skip
                info = align(AlignCommand(
                    model=cfg.model, data=cfg.data, optim=align_opt, source=d1["out_dir"],
                    align=AlignLossConfig(alpha=cfg.alpha, target_layers=list(cfg.target_layers),
                                          direction_source="dual", response_choice="all"),
                    train=_train(out / "dual_align", cfg.align_epochs, cfg.seed, cfg.accelerator)))  # fmt: skip
                final, held = out / "dual_align", 2 * one_model + info["cache_bytes"]
            else:
                dpo(DPOCommand(model=cfg.model, data=cfg.data, optim=OptimConfig(lr=cfg.dpo_lr), init=init,
                               train=_train(out / "dpo", cfg.dpo_epochs, cfg.seed, cfg.accelerator)))  # fmt: skip
                final, held = out / "dpo", one_model
        seconds = time.perf_counter() - t0
        ev = _eval(str(final), cfg, base["perplexity"])
        name = {"scit": "RAHF-SCIT", "dual": "RAHF-DUAL", "dpo": "DPO"}[method]
        rows.append({"method": name, "win_rate": ev["win_rate"], "ppl_ratio": ev["ppl_ratio"], "seconds": seconds,
                     "peak_rss_mb": mem.peak / 2**20, "model_state_mb": held / 2**20})  # fmt: skip
        metrics.update({f"{method}_win_rate": ev["win_rate"], f"{method}_ppl_ratio": ev["ppl_ratio"],
                        f"{method}_seconds": seconds, f"{method}_peak_rss_mb": mem.peak / 2**20,
                        f"{method}_model_state_mb": held / 2**20})  # fmt: skip
        if "cos_dA_v" in info:
            metrics[f"{method}_cos_dA_v"] = info["cos_dA_v"]
            metrics[f"{method}_align_loss_first"] = info["align_loss_first"]
            metrics[f"{method}_align_loss_last"] = info["align_loss_last"]
    table = markdown_table(
        rows, ["method", "win_rate", "ppl_ratio", "seconds", "peak_rss_mb", "model_state_mb"]
    )
    fig = new_figure(5, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar([r["method"] for r in rows], [r["win_rate"] for r in rows], color="tab:blue")
    ax.axhline(0.5, color="grey", ls="--", lw=1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("held-out win rate (log-likelihood margin)")
    out.mkdir(parents=True, exist_ok=True)
    save_figure(fig, out / "compare.png")
    (out / "compare.md").write_text(table)
    metrics["compare_seconds"] = time.perf_counter() - t_all
    write_json(out / "compare.json", {"rows": rows, "metrics": metrics})
    return {"rows": rows, "metrics": metrics, "table": table, "init": init, "out": str(out)}


def with_data(cfg: CompareCommand, **kw) -> CompareCommand:
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **kw))
