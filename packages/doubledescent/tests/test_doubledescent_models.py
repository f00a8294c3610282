import pytest
import torch
from doubledescent import (
    FiveLayerCNN,
    PreActResNet18,
    SimpleFC,
    build_model,
    cnn_params,
    resnet18_params,
    simple_fc_params,
)

from tenfold_core.errors import ConfigError
from tenfold_core.models import count_parameters


@pytest.mark.parametrize("k", [1, 2, 5, 12])
def test_cnn_and_resnet_param_counts_match_the_formulas(k):
    assert count_parameters(FiveLayerCNN(k)) == cnn_params(k) == 378 * k * k + 152 * k + 10
    assert count_parameters(FiveLayerCNN(k, pooling="official")) == cnn_params(k)
    assert count_parameters(PreActResNet18(k)) == resnet18_params(k) == 2724 * k * k + 229 * k + 10


def test_paper_endpoints():
    assert cnn_params(1) == 540 and cnn_params(64) == 1_558_026  # the official CSVs' range
    assert count_parameters(FiveLayerCNN(64)) == 1_558_026
    n = count_parameters(PreActResNet18(64))
    assert n == resnet18_params(64) == 11_172_170  # a real ResNet18, not the CNN the official code trains
    assert count_parameters(SimpleFC(1000)) == simple_fc_params(1000) == 795 * 1000 + 10
    assert count_parameters(FiveLayerCNN(3, 1, 7)) == cnn_params(3, 1, 7)
    assert count_parameters(PreActResNet18(3, 1, 7)) == resnet18_params(3, 1, 7)


@pytest.mark.parametrize(
    "model,feat_dim",
    [
        (SimpleFC(7, 3 * 32 * 32), 7),
        (FiveLayerCNN(3), 24),
        (FiveLayerCNN(3, pooling="official"), 24),
        (PreActResNet18(2), 16),
    ],
)
def test_features_are_the_penultimate_layer(model, feat_dim):
    model.eval()
    x = torch.randn(4, 3, 32, 32)
    logits, f = model(x, return_features=True)
    assert f.shape == (4, feat_dim) and logits.shape == (4, 10)
    assert torch.allclose(model.head(model.features(x)), logits)


def test_simplefc_paper_init():
    torch.manual_seed(0)
    m = SimpleFC(500, 784)
    assert abs(m.hidden.weight.std().item() - 0.1) < 0.005
    assert abs(m.classifier.weight.std().item() - 0.1) < 0.01


def test_build_model_dispatches_on_the_model_name():
    # the official factory dispatches on the data set name, so "ResNet18" silently trains the CNN
    assert isinstance(build_model("resnet18", 2, (3, 32, 32), 10), PreActResNet18)
    assert isinstance(build_model("cnn", 2, (3, 32, 32), 10), FiveLayerCNN)
    assert isinstance(build_model("fc", 2, (1, 8, 8), 10), SimpleFC)
    assert isinstance(build_model("cnn", 2, (1, 8, 8), 10), FiveLayerCNN)  # digits images work too
    with pytest.raises(ConfigError, match="image inputs"):
        build_model("cnn", 2, (30,), 10)
    with pytest.raises(ConfigError, match="model"):
        build_model("vgg", 2, (3, 32, 32), 10)
