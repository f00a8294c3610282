"""The run the core owns: train/eval modes, dict batches, config.json + load_run, text batches, schedules."""

import json
from dataclasses import dataclass

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from tenfold_core.cli import arg
from tenfold_core.data import make_text_dataloader
from tenfold_core.data.loader import padding_fraction
from tenfold_core.errors import DataError, ModelLoadError
from tenfold_core.models import load_run, register_model, tiny_bert_config, word_level_tokenizer
from tenfold_core.train import (
    ClassifierModule,
    OptimConfig,
    TrainConfig,
    build_optimizer,
    fit,
    make_dataloader,
)


def quiet(tmp_path, **kw):
    kw = {"accelerator": "cpu", "progress_bar": False, "loggers": [], "max_epochs": 1, **kw}
    return TrainConfig(out_dir=str(tmp_path), **kw)


WORDS = "good bad fine awful great poor nice terrible film plot actor scene".split()


def texts_labels(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    texts, labels = [], []
    for _ in range(n):
        k = int(torch.randint(2, 12, (1,), generator=g))
        words = [WORDS[int(i)] for i in torch.randint(0, len(WORDS), (k,), generator=g)]
        texts.append(" ".join(words))
        labels.append(int(sum(w in ("good", "fine", "great", "nice") for w in words) > k / 4))
    return texts, labels


# ------------------------------------------------------------------------------------------- text batches
def test_text_loader_buckets_and_reseeds_per_epoch():
    texts, labels = texts_labels(400)
    tok = word_level_tokenizer(WORDS)
    dl = make_text_dataloader(texts, labels, tok, batch_size=16, shuffle=True, seed=3)
    plain = make_text_dataloader(texts, labels, tok, batch_size=16, shuffle=True, seed=3, bucket=False)
    assert padding_fraction(dl) < 0.5 * padding_fraction(plain)  # bucketing removes most padding
    b = next(iter(dl))
    assert set(b) == {"input_ids", "attention_mask", "labels"} and b["input_ids"].shape[0] == 16

    def order(loader, epoch):
        loader.sampler.set_epoch(epoch)
        return list(iter(loader.sampler))

    again = make_text_dataloader(texts, labels, tok, batch_size=16, shuffle=True, seed=3)
    assert order(dl, 1) == order(again, 1) and order(dl, 1) != order(dl, 2)
    assert sorted(order(dl, 1)) == list(range(400))  # every text once per epoch


def test_text_loader_unshuffled_keeps_order_and_omits_labels():
    texts, _ = texts_labels(10)
    tok = word_level_tokenizer(WORDS)
    dl = make_text_dataloader(texts, None, tok, batch_size=4, padding="max_length", max_length=16)
    batches = list(dl)
    assert "labels" not in batches[0] and batches[0]["input_ids"].shape == (4, 16)
    lens = torch.cat([b["attention_mask"].sum(1) for b in batches]).tolist()
    assert lens == [len(t.split()) + 2 for t in texts]  # [CLS] ... [SEP], input order kept


@pytest.mark.parametrize("bad, msg", [([0, 1, 2], "outside the label set"), ([0, 0.5, 1], "not an integer"),
                                      ([0, -1, 1], "outside"), ([0, "positive", 1], "not an integer")])  # fmt: skip
def test_text_loader_refuses_stray_labels(bad, msg):
    tok = word_level_tokenizer(WORDS)
    with pytest.raises(DataError, match=msg):
        make_text_dataloader(["good film", "bad plot", "nice actor"], bad, tok, batch_size=2, num_labels=2)


# ------------------------------------------------------------------ defect 2: train mode for a HF model in eval
class ModeProbe(L.Callback):
    def __init__(self):
        self.train_modes, self.val_modes = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.train_modes.append(pl_module.model.bert.embeddings.dropout.training)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.val_modes.append(pl_module.model.bert.embeddings.dropout.training)


def test_fit_trains_hf_model_in_train_mode_and_load_run_rebuilds_it(tmp_path):
    from transformers import BertForSequenceClassification

    texts, labels = texts_labels(64)
    tok = word_level_tokenizer(WORDS)
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_bert_config(vocab_size=tok.vocab_size, hidden=32)).eval()
    assert not model.training  # as from_pretrained returns it
    probe = ModeProbe()
    res = fit(
        ClassifierModule(model, OptimConfig(lr=1e-3)),
        quiet(tmp_path, monitor="val_acc", mode="max"),
        make_text_dataloader(texts, labels, tok, batch_size=16, shuffle=True),
        make_text_dataloader(texts[:32], labels[:32], tok, batch_size=16),
        callbacks=[probe],
        run_config={"data": {"max_length": 128, "tokenizer": "word-level"}},
    )
    assert probe.train_modes and all(probe.train_modes)  # dropout on while fine-tuning
    assert probe.val_modes and not any(probe.val_modes)  # and off for validation
    conf = json.loads((tmp_path / "config.json").read_text())
    assert conf["model_class"] == "transformers.models.bert.modeling_bert:BertForSequenceClassification"
    assert conf["data"]["tokenizer"] == "word-level" and conf["train"]["monitor"] == "val_acc"
    run = load_run(tmp_path)
    best = torch.load(res.best_checkpoint, weights_only=True)["state_dict"]
    for k, v in run.model.state_dict().items():
        assert torch.equal(v, best["model." + k]), k
    assert not run.model.training and run.config["best_score"] == pytest.approx(res.best_score)


# ------------------------------------------------------------------------------------- registry + load_run
@dataclass
class ToyConfig:
    dim: int = arg(8, help="input size")
    hidden: int = arg(16, help="hidden size")
    widths: list[int] = arg([3], help="a list field")

    def __post_init__(self):
        if self.hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {self.hidden}")


@register_model
class ToyNet(nn.Module):
    config_class = ToyConfig

    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config = config
        self.net = nn.Sequential(nn.Linear(config.dim, config.hidden), nn.ReLU(), nn.Linear(config.hidden, 2))

    def forward(self, x):
        return self.net(x)


def toy_data(n=128, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long())


def test_load_run_rebuilds_registered_model(tmp_path):
    cfg = ToyConfig(dim=8, hidden=12, widths=[1, 2])
    fit(ClassifierModule(ToyNet(cfg), OptimConfig(lr=0.05)), quiet(tmp_path, max_epochs=2),
        make_dataloader(toy_data(), 32, shuffle=True), make_dataloader(toy_data(64, seed=1), 64),
        run_config={"model": cfg, "data": {"n": 128}})  # fmt: skip
    run = load_run(tmp_path)
    assert isinstance(run.model, ToyNet) and run.model_config == cfg and run.config["data"] == {"n": 128}
    x = toy_data(16, seed=2).tensors[0]
    assert run.model(x).shape == (16, 2)
    acc = (run.model(toy_data(256, seed=3).tensors[0]).argmax(-1) == toy_data(256, seed=3).tensors[1]).float()
    assert acc.mean() > 0.8  # the trained weights, not a fresh init
    # a config.json that no longer matches the weights is an error, not a silent partial load
    conf = json.loads((tmp_path / "config.json").read_text())
    conf["model"]["hidden"] = 13
    (tmp_path / "config.json").write_text(json.dumps(conf))
    with pytest.raises(ModelLoadError, match="shape mismatch"):
        load_run(tmp_path)
    conf["model"]["hidden"] = -1
    (tmp_path / "config.json").write_text(json.dumps(conf))
    with pytest.raises(ModelLoadError, match="hidden must be >= 1"):
        load_run(tmp_path)
    with pytest.raises(ModelLoadError, match="no such run folder"):
        load_run(tmp_path / "nope")


def test_register_model_needs_config_class():
    with pytest.raises(TypeError, match="config_class"):

        @register_model
        class NoConfig(nn.Module):
            pass


# ----------------------------------------------------------------------------------------------- schedules
def test_step_decay_per_epoch_in_fit(tmp_path):
    class LrProbe(L.Callback):
        lrs: list = []

        def on_train_epoch_start(self, trainer, pl_module):
            self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    probe = LrProbe()
    optim = OptimConfig(name="sgd", lr=0.1, schedule="step", milestones=[2, 3], gamma=0.5, interval="epoch")
    fit(ClassifierModule(ToyNet(ToyConfig()), optim), quiet(tmp_path, max_epochs=4, monitor=None),
        make_dataloader(toy_data(), 32), callbacks=[probe])  # fmt: skip
    assert probe.lrs == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_step_decay_per_step():
    opt, sched = build_optimizer(
        nn.Linear(2, 2), OptimConfig(lr=1.0, schedule="step", milestones=[2, 4], gamma=0.1), 6
    )
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
