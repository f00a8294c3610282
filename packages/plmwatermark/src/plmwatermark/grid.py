"""``plmwatermark evaluate``: the grid {rare, combination} x {single-task, multi-task} x fine-tune epochs, a WESR-vs-
epochs plot with clean accuracy, a clean control, and two removal attempts (fine-pruning, top-layer re-init).

Single-task = one proxy task, the downstream task's type when it is a proxy task, else the first (EP-style);
multi-task = all proxy tasks (WLM). The user's downstream task and domain come from the preset's ``finetune`` section. Epoch 0 = the watermarked model itself,
measured on its proxy head of the downstream task's name when it has one, else on its first head.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plmwatermark.config import EvaluateCommand
from plmwatermark.data import COMMON_WORDS
from tenfold_core.cli import config_to_dict, load_preset
from tenfold_core.io import write_json
from tenfold_core.report import markdown_table, new_figure, write_demo_outputs

__all__ = ["run_pipeline", "run_grid", "save_model_dir"]

PKG = "plmwatermark"


def save_model_dir(model, tok, folder: Path, stage: str) -> Path:
    from tenfold_core.models import save_weights

    folder.mkdir(parents=True, exist_ok=True)
    save_weights(model, folder / "model.safetensors")
    write_json(folder / "config.json", {"model_class": "plmwatermark.model:MultiTaskEncoder",
                                       "model": config_to_dict(model.config), "stage": stage})  # fmt: skip
    tok.save_pretrained(str(folder / "tokenizer"))
    return folder


def _epoch0(embed_metrics: dict, tasks: list[str], downstream: str) -> tuple[float, float]:
    name = downstream if f"wesr_{downstream}" in embed_metrics else tasks[0]
    return embed_metrics[f"wesr_{name}"], embed_metrics[f"clean_acc_{name}"]


def single_task_for(proxy: list[str], downstream: str, single_task: str | None = None) -> str:
    """The single-task arm's one proxy task: ``single_task`` if given, else the proxy task of the downstream task's
    type when there is one (the stronger, EP-style baseline: it knows the downstream task), else the first."""
    if single_task:
        return single_task
    return downstream if downstream in proxy else proxy[0]


def run_pipeline(out: Path, kind: str, regime: str, max_epochs: int, preset: str = "demo", seed: int = 0,
                 overrides: dict | None = None, single_task: str | None = None) -> dict[str, Any]:  # fmt: skip
    """embed (kind, regime) -> finetune for ``max_epochs`` with a per-epoch WESR probe. Returns the rows and paths."""
    from plmwatermark.train import load_key, run_embed, run_finetune

    base = load_preset(PKG, preset, "embed", (overrides or {}).get("embed", {}))
    down0 = load_preset(PKG, preset, "finetune", (overrides or {}).get("finetune", {})).data.tasks[0]
    words = list(base.trigger.words) if kind == "rare" else list(COMMON_WORDS[:2])
    proxy = list(base.data.tasks)
    tasks = proxy if regime == "multi" else [single_task_for(proxy, down0, single_task)]
    tag = f"{kind}-{regime}-s{seed}"
    ecfg = load_preset(PKG, preset, "embed", {
        "trigger.kind": kind, "trigger.words": words, "train.seed": seed,
        "train.out_dir": str(out / "models" / tag / "watermarked"), "train.resume": "never",
        "key_file": str(out / "keys" / f"{tag}.key.json"), **(overrides or {}).get("embed", {}), "data.tasks": tasks,
    })  # fmt: skip
    em = run_embed(ecfg)
    key = load_key(ecfg.key_file)
    fcfg = load_preset(PKG, preset, "finetune", {
        "model_dir": ecfg.train.out_dir, "train.max_epochs": max_epochs, "train.seed": seed, "train.resume": "never",
        "train.out_dir": str(out / "models" / tag / "finetuned"), **(overrides or {}).get("finetune", {}),
    })  # fmt: skip
    downstream = fcfg.data.tasks[0]
    w0, a0 = _epoch0(em, tasks, downstream)
    rows = [{"kind": kind, "regime": regime, "epochs": 0, "wesr": w0, "clean_acc": a0,
             "false_trigger": em.get(f"false_trigger_{tasks[0]}")}]  # fmt: skip
    ft = run_finetune(fcfg, key) if max_epochs > 0 else {"history": []}
    for h in ft["history"]:
        rows.append({"kind": kind, "regime": regime, "epochs": h["epoch"], "wesr": h[f"wesr_{downstream}"],
                     "clean_acc": h[f"clean_acc_{downstream}"], "false_trigger": h.get(f"false_trigger_{downstream}"),
                     "base_rate": h[f"base_rate_{downstream}"]})  # fmt: skip
    return {"rows": rows, "embed": em, "key_file": ecfg.key_file, "watermarked": ecfg.train.out_dir,
            "finetuned": fcfg.train.out_dir, "clean": str(Path(ecfg.train.out_dir) / "clean_stage"),
            "finetune_cfg": fcfg, "downstream": downstream, "tasks": tasks}  # fmt: skip


def run_control(out: Path, clean_dir: str, key_file: str, max_epochs: int, preset: str, seed: int,
                tag: str = "control") -> dict[str, Any]:  # fmt: skip
    """The clean (never poisoned) proxy model fine-tuned the same way: the false-claim baseline."""
    from plmwatermark.train import load_key, run_finetune

    fcfg = load_preset(PKG, preset, "finetune", {
        "model_dir": clean_dir, "train.max_epochs": max_epochs, "train.seed": seed, "train.resume": "never",
        "train.out_dir": str(out / "models" / tag),
    })  # fmt: skip
    ft = run_finetune(fcfg, load_key(key_file))
    return {"history": ft["history"], "dir": fcfg.train.out_dir}


def removal_attempts(
    out: Path, pipe: dict, prune_fraction: float, reinit_layers: int, preset: str, seed: int
):
    """Fine-pruning (prune the last layer's least active FFN neurons, then 1 epoch of fine-tuning) and top-layer
    re-initialisation (then 1 epoch), both on the fine-tuned watermarked model; WESR after each."""
    from plmwatermark.data import load_tasks
    from plmwatermark.evaluate import fine_prune, reinit_top_layers
    from plmwatermark.train import load_key, load_model_dir, run_finetune

    key = load_key(pipe["key_file"])
    res = {}
    for name in ("fine_pruning", "reinit_top"):
        model, tok, _ = load_model_dir(pipe["finetuned"])
        task = load_tasks(pipe["finetune_cfg"].data)[0]
        if name == "fine_pruning":
            fine_prune(model, tok, task, prune_fraction, pipe["finetune_cfg"].data.max_length)
        else:
            reinit_top_layers(model, reinit_layers)
        src = save_model_dir(model, tok, out / "models" / f"{name}-src", name)
        fcfg = load_preset(PKG, preset, "finetune", {
            "model_dir": str(src), "reinit_head": False, "train.max_epochs": 1, "train.seed": seed,
            "train.resume": "never", "train.out_dir": str(out / "models" / name),
        })  # fmt: skip
        h = run_finetune(fcfg, key)["history"][-1]
        d = pipe["downstream"]
        res[f"{name}_wesr"], res[f"{name}_clean_acc"] = h[f"wesr_{d}"], h[f"clean_acc_{d}"]
    return res


def plot(rows: list[dict], control: list[dict] | None = None):
    fig = new_figure(7, 3.5)
    ax1, ax2 = fig.subplots(1, 2)
    for kind, regime in sorted({(r["kind"], r["regime"]) for r in rows}):
        sel = sorted(
            (r for r in rows if r["kind"] == kind and r["regime"] == regime), key=lambda r: r["epochs"]
        )
        ax1.plot([r["epochs"] for r in sel], [r["wesr"] for r in sel], marker="o", label=f"{kind}/{regime}")
        ax2.plot(
            [r["epochs"] for r in sel], [r["clean_acc"] for r in sel], marker="o", label=f"{kind}/{regime}"
        )
    if control:
        ax1.plot(
            [r["epochs"] for r in control],
            [r["wesr"] for r in control],
            "k--",
            marker="x",
            label="clean control",
        )
        ax2.plot(
            [r["epochs"] for r in control],
            [r["clean_acc"] for r in control],
            "k--",
            marker="x",
            label="control",
        )
    ax1.set(xlabel="downstream fine-tuning epochs", ylabel="WESR", ylim=(-0.02, 1.02))
    ax2.set(xlabel="downstream fine-tuning epochs", ylabel="clean accuracy", ylim=(0, 1.02))
    ax1.legend(fontsize=7)
    return fig


def run_grid(cmd: EvaluateCommand) -> dict[str, Any]:
    out = Path(cmd.out)
    rows, metrics, pipes = [], {}, {}
    max_ep = max(cmd.epochs)
    for kind in cmd.kinds:
        for regime in cmd.regimes:
            p = run_pipeline(out, kind, regime, max_ep, cmd.base_preset, cmd.seed)
            pipes[(kind, regime)] = p
            rows += [r for r in p["rows"] if r["epochs"] in cmd.epochs]
    first = next(iter(pipes.values()))
    ctrl = run_control(out, first["clean"], first["key_file"], max_ep, cmd.base_preset, cmd.seed)
    d = first["downstream"]
    control = [{"epochs": h["epoch"], "wesr": h[f"wesr_{d}"], "clean_acc": h[f"clean_acc_{d}"]}
               for h in ctrl["history"] if h["epoch"] in cmd.epochs]  # fmt: skip
    for r in rows:
        metrics[f"wesr_{r['kind']}_{r['regime']}_ep{r['epochs']}"] = r["wesr"]
        metrics[f"clean_acc_{r['kind']}_{r['regime']}_ep{r['epochs']}"] = r["clean_acc"]
    for c in control:
        metrics[f"control_wesr_ep{c['epochs']}"] = c["wesr"]
        metrics[f"control_clean_acc_ep{c['epochs']}"] = c["clean_acc"]
    if cmd.removal:
        for kind in cmd.kinds:
            if (kind, "multi") in pipes:
                rem = removal_attempts(out / kind, pipes[(kind, "multi")], cmd.prune_fraction, cmd.reinit_layers,
                                       cmd.base_preset, cmd.seed)  # fmt: skip
                metrics.update({f"{kind}_multi_{k}": v for k, v in rem.items()})
    report = ("# plmwatermark evaluate\n\n" + markdown_table(rows, ["kind", "regime", "epochs", "wesr", "clean_acc",
              "false_trigger"]) + "\nClean control:\n\n" + markdown_table(control) + "\n![](wesr_vs_epochs.png)\n")  # fmt: skip
    write_demo_outputs(out, metrics, report, {"wesr_vs_epochs": plot(rows, control)})
    write_json(out / "rows.json", rows)
    return metrics
