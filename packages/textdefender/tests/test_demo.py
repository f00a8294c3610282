"""The demo's metrics: flat, computed from the benchmark's cells (means, spreads, paired differences, ordering)."""

import json

import pytest


def _cell(defense, seed, aua, clean=90.0, suc=10.0, cost=1.0):
    return {"defense": defense, "seed": seed, "mode": "plain", "recipe": "textfooler", "clean": clean, "aua": aua,
            "suc": suc, "queries": 20.0, "n": 286, "protocol": "p", "train_seconds_per_epoch": cost}  # fmt: skip


CELLS = [
    _cell("base", 0, 75.0), _cell("freelb", 0, 77.0, cost=4.0), _cell("freelbpp", 0, 81.0, cost=8.0),
    _cell("base", 1, 76.0), _cell("freelb", 1, 83.0, cost=4.0), _cell("freelbpp", 1, 84.0, cost=8.0),
    _cell("base", 2, 85.0), _cell("freelb", 2, 87.0, cost=4.0), _cell("freelbpp", 2, 86.0, cost=8.0),
]  # fmt: skip


def test_demo_metrics_arithmetic():
    from textdefender.demo import demo_metrics

    m = demo_metrics(CELLS, ["base", "freelb", "freelbpp"], 300)
    assert m["seeds"] == 3 and m["n_attacked"] == 286 and m["n_requested"] == 300
    assert m["base_aua"] == pytest.approx((75 + 76 + 85) / 3, abs=0.01)
    assert m["base_aua_std"] == pytest.approx(4.50, abs=0.01)  # population std of 75, 76, 85
    assert m["freelb_minus_base_aua"] == pytest.approx((2 + 7 + 2) / 3, abs=0.01)
    assert m["freelb_minus_base_aua_min"] == 2.0
    assert m["freelbpp_minus_freelb_aua_min"] == -1.0  # seed 2
    assert m["ordering_holds_seeds"] == 2
    assert m["base_cost"] == 1.0 and m["freelbpp_cost"] == 8.0
    assert all(isinstance(v, (int, float)) for v in m.values())  # flat
    one = demo_metrics([c for c in CELLS if c["seed"] == 0], ["base", "freelb", "freelbpp"], 300)
    assert "base_aua_std" not in one and one["ordering_holds_seeds"] == 1


def test_demo_writes_flat_metrics_from_its_benchmark(tmp_path, monkeypatch):
    """demo() runs the benchmark verb with the demo preset (here replaced by a stub writing the cells) and writes
    metrics.json computed from those cells, report.md and the plot."""
    import textdefender.benchmark as bench
    from textdefender.config import DemoCommand
    from textdefender.demo import demo

    seen = {}

    def fake_benchmark(cfg):
        seen["cfg"] = cfg
        out = tmp_path / "d" / "benchmark"
        out.mkdir(parents=True)
        (out / "cells.jsonl").write_text("".join(json.dumps({"status": "done", **c}) + "\n" for c in CELLS))
        (out / "table.md").write_text("| table |\n")
        from tenfold_core.report import new_figure, save_figure

        save_figure(new_figure(2, 2), out / "benchmark.png")
        return {}

    monkeypatch.setattr(bench, "benchmark", fake_benchmark)
    m = demo(DemoCommand(out=str(tmp_path / "d"), seeds=3))
    cfg = seen["cfg"]
    assert cfg.seeds == [0, 1, 2] and cfg.defenses[:3] == ["base", "freelb", "freelbpp"]
    assert cfg.attack.n_examples == 300 and cfg.attack.recipe == "textfooler"
    written = json.loads((tmp_path / "d" / "metrics.json").read_text())
    assert written["ordering_holds_seeds"] == 2 == m["ordering_holds_seeds"]
    assert all(not isinstance(v, (dict, list)) for v in written.values())
    assert "FreeLB++ >= FreeLB >= base on 2 of 3" in (tmp_path / "d" / "report.md").read_text()
