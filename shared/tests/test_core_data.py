import json

import pytest

from tenfold_core.data import (
    build_label_names,
    load_text_classification,
    make_sentiment_data,
    read_rows,
    sentiment_corpus,
    sentiment_vocabulary,
    split_indices,
    write_tsv,
)
from tenfold_core.errors import DataError


def test_tsv_single_file_split_is_deterministic(tmp_path):
    f = tmp_path / "data.tsv"
    f.write_text("sentence\tlabel\n" + "".join(f"text number {i}\t{i % 3}\n" for i in range(100)))
    a = load_text_classification(f, seed=1)
    b = load_text_classification(f, seed=1)
    c = load_text_classification(f, seed=2)
    assert (len(a.train), len(a.dev), len(a.test)) == (80, 10, 10)
    assert a.train.texts == b.train.texts and a.train.texts != c.train.texts
    assert a.label_names == ["0", "1", "2"]
    assert set(a.train.texts).isdisjoint(a.test.texts)


def test_folder_with_string_labels_shares_mapping(tmp_path):
    (tmp_path / "train.csv").write_text(
        "text,label\n" + "good movie,pos\nbad movie,neg\nfine,pos\nmeh,neg\n" * 5
    )
    (tmp_path / "test.jsonl").write_text(json.dumps({"text": "great", "label": "pos"}) + "\n")
    d = load_text_classification(tmp_path)
    assert d.label_names == ["neg", "pos"]
    assert d.test.labels == [1] and len(d.dev) > 0 and len(d.train) + len(d.dev) == 20


def test_column_mapping_jsonl_and_parquet(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text("\n".join(json.dumps({"sentence": f"s {i}", "y": i % 2}) for i in range(20)))
    d = load_text_classification(f, text_column="sentence", label_column="y")
    assert d.num_labels == 2
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": [f"t{i}" for i in range(10)], "label": [i % 2 for i in range(10)]}), p)
    assert len(read_rows(p)) == 10


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("a.csv", "sentence,label\nhi,1\n", "a.csv: missing column 'text'"),
        ("b.tsv", "", "b.tsv: no rows"),
        ("c.tsv", "hello world no tab\n", "c.tsv line 1: expected 'text<TAB>label'"),
        ("d.jsonl", '{"text": "a", "label": 1}\n{"text": "b"\n', "d.jsonl line 2: invalid JSON"),
        ("e.jsonl", '{"text": "a", "label": 1}\n{"text": "b"}\n', "e.jsonl line 2: missing column 'label'"),
        ("f.tsv", "ok\t1\n\t0\n", "f.tsv line 2: empty"),
        ("g.xlsx", "x", "unsupported extension"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, name, content, message):
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        load_text_classification(f)


def test_bad_encoding_and_unknown_label(tmp_path):
    f = tmp_path / "latin.tsv"
    f.write_bytes("caf\xe9\t1\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_text_classification(f)
    g = tmp_path / "g.tsv"
    g.write_text("a\tpos\nb\tneg\nc\tmaybe\n")
    with pytest.raises(DataError, match="g.tsv line 3: label 'maybe' is not a known label"):
        load_text_classification(g, label_names=["neg", "pos"])
    with pytest.raises(DataError, match="no such file"):
        load_text_classification(tmp_path / "missing.tsv")


def test_hub_id_offline_fails_with_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError) as e:
        load_text_classification("some-org/surely-not-cached-dataset-xyz")
    assert "\n" not in str(e.value) and "surely-not-cached" in str(e.value)


def test_label_names_and_split_indices():
    assert build_label_names([2, 0, 1, 1]) == ["0", "1", "2"]
    assert build_label_names(["b", "a"]) == ["a", "b"]
    parts = split_indices(10, (0.5, 0.5), seed=0)
    assert sorted(parts[0] + parts[1]) == list(range(10))
    with pytest.raises(ValueError):
        split_indices(10, (0.5, 0.6))


def test_synthetic_sentiment_needs_word_order(tmp_path):
    d = make_sentiment_data(400, 50, 200, seed=0)
    assert d.label_names == ["negative", "positive"] and abs(sum(d.train.labels) - 200) <= 1
    assert any(" but " in t for t in d.train.texts) and any(" not " in t for t in d.train.texts)
    vocab = set(sentiment_vocabulary())
    assert all(w in vocab for t in sentiment_corpus(50) for w in t.split())
    # a bag-of-words linear model cannot solve it well; the label follows the rules exactly
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    def bow_accuracy(**kw):
        big = make_sentiment_data(3000, 10, 1000, seed=1, **kw)
        vec = CountVectorizer().fit(big.train.texts)
        clf = LogisticRegression(max_iter=2000).fit(vec.transform(big.train.texts), big.train.labels)
        return clf.score(vec.transform(big.test.texts), big.test.labels)

    assert bow_accuracy() < 0.58  # symmetric language: words alone say nothing
    assert 0.6 < bow_accuracy(negation_prob=0.25, but_prob=0.35) < 0.8
    write_tsv(tmp_path / "s.tsv", d.test, d.label_names)
    again = load_text_classification(
        tmp_path / "s.tsv", label_names=d.label_names, split_fractions=(1.0, 0.0, 0.0)
    )
    assert sorted(again.train.texts) == sorted(d.test.texts)


def test_hub_dataset_class_labels_hidden_test_labels(monkeypatch):
    import datasets

    feats = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )

    def split(n, labels):
        return datasets.Dataset.from_dict(
            {"sentence": [f"s{i}" for i in range(n)], "label": labels}, features=feats
        )

    fake = datasets.DatasetDict(
        {
            "train": split(40, [i % 2 for i in range(40)]),
            "validation": split(10, [1] * 10),
            "test": split(10, [-1] * 10),
        }
    )
    seen = {}

    def load_dataset(name, config=None):
        seen["args"] = (name, config)
        return fake

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    d = load_text_classification("org/sst2-like", text_column="sentence", hub_config="default")
    assert seen["args"] == ("org/sst2-like", "default")
    assert d.label_names == ["neg", "pos"]
    # the hub test split hides its labels: the labelled validation split becomes test, dev is carved from train
    assert d.test.labels == [1] * 10 and len(d.train) + len(d.dev) == 40 and len(d.dev) == 4
    with pytest.raises(DataError, match="missing column 'text'"):
        load_text_classification("org/sst2-like")
    monkeypatch.setattr(
        datasets, "load_dataset", lambda *a, **k: datasets.DatasetDict({"validation": split(3, [0, 1, 0])})
    )
    with pytest.raises(DataError, match="no train split"):
        load_text_classification("org/no-train", text_column="sentence")


# ------------------------------------------------------------------------- issue 21: stray labels are errors
@pytest.mark.parametrize("stray, message", [
    ("positive", "line 4: label 'positive' is not an integer class"),
    ("0.7", "line 4: label '0.7' is not an integer class"),
    ("-1", "line 4: label -1 breaks the label set"),
    ("7", "line 4: label 7 breaks the label set"),
    ("1000000000", "line 4: label 1000000000 breaks the label set"),
])  # fmt: skip
def test_stray_label_in_an_integer_file_is_an_error(tmp_path, stray, message):
    f = tmp_path / "d.tsv"
    f.write_text("a b\t0\nc d\t1\ne f\t0\ng h\t" + stray + "\ni j\t1\n" * 6)
    with pytest.raises(DataError, match=message.replace(".", r"\.")):
        load_text_classification(f)


def test_dev_label_unseen_in_train_is_an_error(tmp_path):
    (tmp_path / "train.tsv").write_text("a b\t0\nc d\t1\n" * 5)
    (tmp_path / "dev.tsv").write_text("a b\t0\nc d\t2\n")
    with pytest.raises(DataError, match=r"dev\.tsv line 2: label '2' is not a known label"):
        load_text_classification(tmp_path)
    d = load_text_classification(tmp_path, label_names=["0", "1", "2"])  # explicit label list: allowed
    assert d.dev.labels == [0, 2]


def test_load_text_data_sources(tmp_path):
    from tenfold_core.config import TextDataConfig
    from tenfold_core.data import load_text_data

    syn = load_text_data(TextDataConfig(n_train=40, n_dev=5, n_test=7, max_train=30))
    assert (len(syn.train), len(syn.dev), len(syn.test)) == (30, 5, 7)
    f = tmp_path / "train.tsv"
    f.write_text("text\tlabel\n" + "".join(f"good film {i}\t1\nbad film {i}\t0\n" for i in range(10)))
    local = load_text_data(TextDataConfig(source=str(f), max_train=0))
    assert (
        sorted(set(local.train.labels)) == [0, 1]
        and len(local.train) + len(local.dev) + len(local.test) == 20
    )
    with pytest.raises(ValueError, match="negation_prob"):
        TextDataConfig(negation_prob=1.5)


def test_shared_tokenizer_helpers(tmp_path):
    from tenfold_core.data import build_tokenizer, encoder_path, load_run_tokenizer
    from tenfold_core.data.tokenizers import make_loader

    texts = ["good film", "bad film", "not good at all"]
    tok = build_tokenizer("tiny", texts, 8)
    dl = make_loader(texts, [1, 0, 0], tok, 2, 8)
    batch = next(iter(dl))
    assert set(batch) == {"input_ids", "attention_mask", "labels"} and batch["input_ids"].shape[1] <= 8
    assert encoder_path("bert-base-uncased") == "bert-base-uncased" and encoder_path("minilm") != "minilm"
    with pytest.raises(DataError, match="not a run written by mypkg train"):
        load_run_tokenizer(tmp_path, "mypkg train")
    tok.save_pretrained(str(tmp_path / "tokenizer"))
    again = load_run_tokenizer(tmp_path)
    assert again("good film")["input_ids"] == tok("good film")["input_ids"]
