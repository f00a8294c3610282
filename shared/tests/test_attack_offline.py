"""``import tenfold_core.attack`` (and TextAttack through it) on a fresh machine with networking disabled, and the
TextAttack-composed attack agreeing with the harness example by example (one subprocess: a clean import state)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    r"""
    import json, os, socket, sys

    attempts = []

    def guard(*args, **kwargs):
        attempts.append(repr(args[:3]))
        raise OSError("networking is disabled in this test")

    socket.socket.connect = guard
    socket.socket.connect_ex = guard
    socket.create_connection = guard
    socket.getaddrinfo = guard

    res = {}
    import tenfold_core, tenfold_core.data, tenfold_core.metrics, tenfold_core.models  # noqa: E401
    res["core_pulls_textattack"] = "textattack" in sys.modules
    import tenfold_core.attack as A
    res["attack_pulls_textattack"] = "textattack" in sys.modules
    folders = A.prepare_offline()
    res["stopwords_file"] = (folders["nltk_data"] / "corpora" / "stopwords" / "english").is_file()
    res["ta_available"] = A.textattack_available()
    if res["ta_available"]:
        hf_home_before = os.environ.get("HF_HOME")
        A.import_textattack()
        res["marker"] = (folders["textattack"] / "post_install_check_3").is_file()
        res["hf_home_restored"] = os.environ.get("HF_HOME") == hf_home_before
        from nltk.corpus import stopwords
        res["nltk_stopwords"] = len(stopwords.words("english"))
        from tenfold_core.errors import ConfigError

        try:
            A.WordNetSynonyms()
            res["wordnet"] = "available"
        except ConfigError as e:  # no local WordNet data: a clear error, no download attempt
            res["wordnet"] = "missing: " + str(e)[:40]
        from tenfold_core.attack import textattack_backend as TB
        from tenfold_core.attack.toy import train_toy_victim

        model, tok, data = train_toy_victim(0)
        syn = A.EmbeddingSynonyms.from_victim(A.Victim(model, tok), k=50)
        enc = A.WordVectorMeanEncoder.from_synonyms(syn)
        agree = {}
        for recipe in ("textfooler", "pwws", "textbugger"):
            proto = A.AttackProtocol(recipe, n_examples=12)
            idx = A.sample_examples(data.test.texts, 12, 5, 42)
            ours = A.run_attack(A.GreedyWordSwapAttack(A.Victim(model, tok), syn, proto, enc),
                                data.test.texts, data.test.labels, indices=idx)
            ta = TB.run_textattack(TB.build_textattack_attack(A.Victim(model, tok), syn, proto, enc),
                                   data.test.texts, data.test.labels, idx)
            keys = ("status", "perturbed", "queries_at_result", "perturbed_words")
            agree[recipe] = [[a[k] for k in keys] == [b[k] for k in keys] for a, b in zip(ours, ta)]
            agree[recipe + "_statuses"] = sorted({a["status"] for a in ours})
        res["agree"] = agree
        # BERT-Attack through TextAttack's own WordSwapMaskedLM on a local (untrained) masked LM: runs offline
        import torch
        from transformers import BertForMaskedLM
        from tenfold_core.models import tiny_bert_config

        torch.manual_seed(0)
        mlm = BertForMaskedLM(tiny_bert_config(vocab_size=len(tok), hidden=32, layers=1, heads=2, max_len=40))
        src = A.MaskedLMSynonyms(mlm, tok, k=50)
        proto = A.AttackProtocol("bert-attack", n_examples=5)
        idx = A.sample_examples(data.test.texts, 5, 5, 42)
        recs = TB.run_textattack(TB.build_textattack_attack(A.Victim(model, tok), src, proto, enc),
                                 data.test.texts, data.test.labels, idx)
        res["ta_bert_attack"] = [r["status"] for r in recs]
    res["network_attempts"] = attempts
    print("RESULT " + json.dumps(res))
    """
)


def test_import_offline_with_networking_disabled(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TA_", "NLTK", "TENFOLD_CACHE", "XDG_CACHE"))
    }
    env.update(
        HOME=str(tmp_path / "home"),  # a fresh machine: no ~/.cache/textattack, no nltk data
        TA_CACHE_DIR=str(tmp_path / "ta-cache"),  # set by the user: TextAttack would redirect HF_HOME to it
        HF_HOME=str(tmp_path / "hf"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONWARNINGS="ignore",
    )
    (tmp_path / "home").mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=550
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    res = json.loads(lines[-1][len("RESULT ") :])
    assert res["network_attempts"] == []
    assert res["core_pulls_textattack"] is False and res["attack_pulls_textattack"] is False
    assert res["stopwords_file"] is True
    assert (
        tmp_path / "home" / ".cache" / "tenfold" / "nltk_data" / "corpora" / "stopwords" / "english"
    ).is_file()
    if res["ta_available"]:
        assert res["marker"] is True and (tmp_path / "ta-cache" / "post_install_check_3").is_file()
        assert res["hf_home_restored"] is True
        assert res["nltk_stopwords"] > 200  # our list, served to nltk
        assert res["wordnet"].startswith(("available", "missing"))
        for recipe in ("textfooler", "pwws", "textbugger"):
            assert all(res["agree"][recipe]), (recipe, res["agree"])
        assert "succeeded" in res["agree"]["textfooler_statuses"]
        assert len(res["ta_bert_attack"]) == 5
        assert set(res["ta_bert_attack"]) <= {"skipped", "succeeded", "failed"}
