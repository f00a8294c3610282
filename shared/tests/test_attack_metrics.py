"""Metric arithmetic, JSONL records, example sampling and the protocol object (no model, fast)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tenfold_core.attack import (
    AttackProtocol,
    get_recipe,
    read_records,
    sample_examples,
    summarize,
    summary_report,
    summary_table,
)
from tenfold_core.errors import ConfigError, DataError

FIXTURE = Path(__file__).parent / "attack_fixtures" / "records_10.jsonl"


def test_fixed_record_file_metrics_match_hand_computed_values():
    recs = read_records(FIXTURE)
    assert len(recs) == 10
    s = summarize(recs)
    assert (s["skipped"], s["succeeded"], s["failed"]) == (2, 5, 3)
    assert s["clean_acc"] == pytest.approx(80.0)  # (5 + 3) / 10
    assert s["aua"] == pytest.approx(30.0)  # 3 / 10
    assert s["success_rate"] == pytest.approx(62.5)  # 5 / 8
    assert s["mean_queries"] == pytest.approx(850 / 8)  # skipped examples excluded
    assert s["perturbed_word_pct"] == pytest.approx((25 + 20 + 25 + 25 + 20) / 5)
    table = summary_table({"fixture": recs})
    assert "| fixture | 10 | 80.00 | 30.00 | 62.50 | 106.25 | 23.00 |" in table
    report = summary_report({"fixture": recs}, AttackProtocol("pwws"))
    assert report.startswith(table)
    assert "- fixture: recipe=pwws; K=50" in report and "attacked 10 of 1000 requested examples" in report


def test_summary_report_one_row_and_protocol_per_recipe():
    recs = read_records(FIXTURE)
    report = summary_report(
        {"textfooler": recs, "pwws": recs[:6]}, AttackProtocol("textfooler", n_examples=10)
    )
    rows = [ln for ln in report.splitlines() if ln.startswith("| textfooler") or ln.startswith("| pwws")]
    assert len(rows) == 2
    assert "- textfooler: recipe=textfooler" in report and "- pwws: recipe=pwws" in report
    assert "attacked 6 of 10 requested" in report
    protos = {"a": AttackProtocol("textbugger", similarity_threshold=0.7), "b": AttackProtocol("pwws")}
    rep = summary_report({"a": recs, "b": recs}, protos)
    assert "- a: recipe=textbugger" in rep and "sim>=0.7000" in rep and "- b: recipe=pwws" in rep
    with pytest.raises(ConfigError):
        summary_report({"c": recs}, protos)


def test_partial_last_line_is_ignored_and_repaired(tmp_path):
    p = tmp_path / "r.jsonl"
    shutil.copy(FIXTURE, p)
    full = p.read_bytes()
    with open(p, "ab") as f:
        f.write(b'{"index": 10, "status": "succ')  # a kill in the middle of a write
    assert len(read_records(p)) == 10
    assert p.read_bytes() != full  # not repaired unless asked
    read_records(p, repair=True)
    assert p.read_bytes() == full


def test_bad_line_in_the_middle_names_the_line(tmp_path):
    p = tmp_path / "r.jsonl"
    lines = FIXTURE.read_text().splitlines()
    lines[3] = "{not json"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"r\.jsonl line 4"):
        read_records(p)
    p.write_text(json.dumps({"index": 0}) + "\n")
    with pytest.raises(DataError, match="status"):
        read_records(p)


def test_sample_examples_filters_short_texts_and_is_seeded():
    texts = ["a b c d", "a b c d e", "one two three four five six", "x", "p q r s t u v w"] * 4
    idx = sample_examples(texts, n=5, min_words=5, seed=42)
    assert len(idx) == 5 and len(set(idx)) == 5
    assert all(len(texts[i].split()) > 4 for i in idx)
    assert idx == sample_examples(texts, n=5, min_words=5, seed=42)
    assert sorted(sample_examples(texts, n=100, min_words=5, seed=1)) == [
        i for i, t in enumerate(texts) if len(t.split()) > 4
    ]


def test_protocol_defaults_are_textdefenders_and_budget_is_per_word():
    p = AttackProtocol()
    assert (p.recipe, p.k, p.max_modification_rate, p.query_factor, p.n_examples, p.min_words, p.seed) == (
        "textfooler", 50, 0.3, 50, 1000, 5, 42,
    )  # fmt: skip
    assert p.similarity_threshold == pytest.approx(0.840845057)
    assert p.budget(5) == 250 and p.budget(20) == 1000
    assert AttackProtocol(query_factor=0).budget(20) is None
    # textfooler's own USE constraint is the protocol's: one constraint, following the protocol's threshold
    assert len(p.similarity_specs()) == 1
    assert AttackProtocol(similarity_threshold=0.5).similarity_specs()[0].threshold == 0.5
    ba = AttackProtocol("bert-attack")
    assert ba.max_rates() == [0.4, 0.3] and len(ba.similarity_specs()) == 2
    assert get_recipe("bae").name == "bert-attack"  # TextDefender's name for BERT-Attack
    assert get_recipe("PWWS").wir == "weighted-saliency"
    with pytest.raises(ConfigError, match="unknown attack recipe"):
        AttackProtocol("hotflip")
    with pytest.raises(ConfigError, match="max_modification_rate"):
        AttackProtocol(max_modification_rate=1.5)
    text = p.describe()
    for part in ("textfooler", "K=50", "rho_max=0.3", "0.8408", "50x#words", "seed 42"):
        assert part in text


def test_word_view_keeps_punctuation_and_windows_like_textattack():
    from tenfold_core.attack import WordText, num_words

    t = WordText.from_text("'Great' film, isn't it? A must-see...")
    assert t.words == ("Great", "film", "isn't", "it", "A", "must-see")
    assert t.text == "'Great' film, isn't it? A must-see..."
    assert t.replace(1, "movie").text == "'Great' movie, isn't it? A must-see..."
    assert t.delete(0).text == "'film, isn't it? A must-see..."
    assert num_words("a b  c\td") == 4
    w = WordText.from_text(" ".join(f"w{i}" for i in range(20)))
    # TextAttack's text_window_around_index: centred, clipped at both ends
    assert w.window(10, 5) == "w8 w9 w10 w11 w12"
    assert w.window(0, 5) == "w0 w1 w2 w3 w4"
    assert w.window(19, 5) == "w15 w16 w17 w18 w19"
    assert w.window(3, 50) == w.text
