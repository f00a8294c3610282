import pytest
import torch
from doubledescent import (
    FiveLayerCNN,
    PreActResNet18,
    SimpleFC,
    WidthModelConfig,
    build_model,
    cnn_params,
    estimate_params,
    resnet18_params,
    simple_fc_params,
)

from tenfold_core.errors import ConfigError
from tenfold_core.models import count_parameters


def cfg(kind="fc", width=4, shape=(3, 32, 32), classes=10, **kw):
    return WidthModelConfig(kind=kind, width=width, input_shape=list(shape), num_classes=classes, **kw)


@pytest.mark.parametrize("k", [1, 2, 5, 12])
def test_cnn_and_resnet_param_counts_match_the_formulas(k):
    assert count_parameters(FiveLayerCNN(cfg("cnn", k))) == cnn_params(k) == 378 * k * k + 152 * k + 10
    assert count_parameters(FiveLayerCNN(cfg("cnn", k, pooling="official"))) == cnn_params(k)
    assert (
        count_parameters(PreActResNet18(cfg("resnet18", k)))
        == resnet18_params(k)
        == 2724 * k * k + 229 * k + 10
    )


def test_paper_endpoints():
    assert cnn_params(1) == 540 and cnn_params(64) == 1_558_026  # the official CSVs' range
    assert count_parameters(FiveLayerCNN(cfg("cnn", 64))) == 1_558_026
    n = count_parameters(PreActResNet18(cfg("resnet18", 64)))
    assert n == resnet18_params(64) == 11_172_170  # a real ResNet18, not the CNN the official code trains
    fc = SimpleFC(cfg("fc", 1000, (1, 28, 28)))
    assert count_parameters(fc) == simple_fc_params(1000) == 795 * 1000 + 10
    assert count_parameters(FiveLayerCNN(cfg("cnn", 3, (1, 8, 8), 7))) == cnn_params(3, 1, 7)
    assert count_parameters(PreActResNet18(cfg("resnet18", 3, (1, 8, 8), 7))) == resnet18_params(3, 1, 7)
    for kind in ("fc", "cnn", "resnet18"):  # the estimate the size guard uses is the real count
        c = cfg(kind, 3, (1, 8, 8), 7)
        assert estimate_params(kind, 3, (1, 8, 8), 7) == c.params() == count_parameters(build_model(c))


@pytest.mark.parametrize(
    "c,feat_dim",
    [
        (cfg("fc", 7), 7),
        (cfg("cnn", 3), 24),
        (cfg("cnn", 3, pooling="official"), 24),
        (cfg("resnet18", 2), 16),
    ],
)
def test_features_are_the_penultimate_layer(c, feat_dim):
    model = build_model(c).eval()
    x = torch.randn(4, 3, 32, 32)
    logits, f = model(x, return_features=True)
    assert f.shape == (4, feat_dim) and logits.shape == (4, 10)
    assert torch.allclose(model.head(model.features(x)), logits)


def test_simplefc_paper_init():
    torch.manual_seed(0)
    m = SimpleFC(cfg("fc", 500, (784,)))
    assert abs(m.hidden.weight.std().item() - 0.1) < 0.005
    assert abs(m.classifier.weight.std().item() - 0.1) < 0.01


def test_build_model_dispatches_on_the_model_kind():
    # the official factory dispatches on the data set name, so "ResNet18" silently trains the CNN
    assert isinstance(build_model(cfg("resnet18", 2)), PreActResNet18)
    assert isinstance(build_model(cfg("cnn", 2)), FiveLayerCNN)
    assert isinstance(build_model(cfg("fc", 2, (1, 8, 8))), SimpleFC)
    assert isinstance(build_model(cfg("cnn", 2, (1, 8, 8))), FiveLayerCNN)  # digits images work too
    with pytest.raises(ValueError, match="image inputs"):
        cfg("cnn", 2, (30,))
    with pytest.raises(ValueError, match="fc only"):  # options of another family are refused, not ignored
        cfg("cnn", 2, init="torch")
    with pytest.raises(ValueError, match="cnn only"):
        cfg("resnet18", 2, pooling="official")
    with pytest.raises(ConfigError, match="must be set"):
        build_model(WidthModelConfig(kind="fc", width=3))


def test_models_rebuild_from_their_run_folder(tmp_path):
    from doubledescent.train import export_unit

    from tenfold_core.config import TrainConfig
    from tenfold_core.models import load_run

    torch.manual_seed(0)
    model = build_model(cfg("cnn", 2, (1, 8, 8)))
    export_unit(
        model, tmp_path, TrainConfig(), {"model": cfg("cnn", 2, (1, 8, 8)).__dict__, "noise": {"p": 0.0}}
    )
    run = load_run(tmp_path)
    assert type(run.model) is FiveLayerCNN and run.model.width == 2
    x = torch.rand(3, 1, 8, 8)
    assert torch.allclose(run.model.eval()(x), model.eval()(x))
