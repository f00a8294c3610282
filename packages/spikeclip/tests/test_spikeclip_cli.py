"""CLI: fast help, presets, bad input as one line with exit 2; the Hugging Face CLIPModel teacher path; data."""

import subprocess
import sys

import pytest
import torch
from spikeclip.cli import app
from spikeclip.config import DataConfig
from spikeclip.data import load_data

from tenfold_core.cli import load_preset


def test_help_is_torch_free_and_lists_verbs():
    code = "import sys, spikeclip.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    assert set(app.training_verbs) == {
        "train-teacher",
        "align-text",
        "align-image",
        "finetune-teacher",
        "dual-finetune",
    }


def test_every_training_verb_has_a_tiny_and_demo_preset():
    for verb in app.training_verbs:
        for preset in ("tiny", "demo"):
            cfg = load_preset("spikeclip", preset, verb)
            assert cfg.train is not None


def test_bad_image_file_is_one_line_exit_2(tmp_path, capsys):
    from PIL import Image

    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(12):
            Image.new("RGB", (10, 10), (i, 2, 3)).save(tmp_path / c / f"ok{i}.png")
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    err = _main(capsys, "align-image", "--preset", "tiny", "--data.dataset", f"imagefolder:{tmp_path}",
                "--data.max_images", "0", "--data.classes", "cat,dog", "--train.out_dir", str(tmp_path / "out"))  # fmt: skip
    assert len(err.strip().splitlines()) == 1 and "broken.png" in err
    assert not (tmp_path / "out" / "model.safetensors").exists()


def _main(capsys, *args) -> str:
    with pytest.raises(SystemExit) as e:
        app.main(list(args))
    assert e.value.code == 2
    return capsys.readouterr().err


def test_bad_values_are_one_line_exit_2(tmp_path, capsys):
    err = _main(capsys, "dual-finetune", "--preset", "tiny", "--loss.kl_reduction", "mean")
    assert "loss.kl_reduction" in err and len(err.strip().splitlines()) == 1
    err = _main(capsys, "evaluate", str(tmp_path), "--text", str(tmp_path))
    assert "config.json" in err and len(err.strip().splitlines()) == 1


def test_imagefolder_splits_and_digits():
    d = load_data(DataConfig(image_size=8))
    sizes = {k: len(v) for k, v in d.splits.items()}
    assert sum(sizes.values()) == 1797 and sizes["test"] == 449
    x, y = d.split("test")[0]
    assert x.shape == (3, 8, 8) and 0 <= x.min() and x.max() <= 1 and 0 <= y < 10
    assert load_data(DataConfig(image_size=8)).splits["val"].indices == d.splits["val"].indices  # seeded


def test_hf_clip_teacher_path(tmp_path):
    """A (tiny, random) Hugging Face CLIPModel saved to a folder works as the teacher of both alignment stages."""
    from spikeclip.train import align_image, align_text, load_run_dir
    from transformers import CLIPModel

    from tenfold_core.models import tiny_clip_config, word_level_tokenizer

    words = "a photo of the number handwritten drawing digit blurry picture black and white image".split()
    names = "zero one two three four five six seven eight nine".split()
    torch.manual_seed(0)
    clip = CLIPModel(tiny_clip_config(vocab_size=64, hidden=32, layers=1, heads=2, image_size=16, patch_size=8,
                                      projection_dim=16))  # fmt: skip
    clip.save_pretrained(tmp_path / "clip")
    word_level_tokenizer(vocab=words + names, max_length=32).save_pretrained(tmp_path / "clip")
    over = {"teacher": str(tmp_path / "clip"), "train.max_epochs": 1, "data.max_images": 32}
    align_text(load_preset("spikeclip", "tiny", "align-text", {**over, "train.out_dir": str(tmp_path / "t")}))
    text, conf = load_run_dir(tmp_path / "t")
    assert (
        text.config.out_dim == 16
        and text.config.embed_dim == 32
        and text.config.tokenizer == str(tmp_path / "clip")
    )
    copied = torch.nn.functional.cosine_similarity(  # started from CLIP's (then trained for one epoch)
        text.embed.position.flatten(),
        clip.text_model.embeddings.position_embedding.weight[:8].flatten(),
        dim=0,
    )
    assert copied > 0.8
    align_image(
        load_preset("spikeclip", "tiny", "align-image", {**over, "train.out_dir": str(tmp_path / "i")})
    )
    img, _ = load_run_dir(tmp_path / "i")
    assert img(torch.rand(2, 3, 8, 8)).shape == (2, 16)
