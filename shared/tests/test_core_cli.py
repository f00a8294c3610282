import subprocess
import sys
from dataclasses import dataclass, field
from typing import Literal

import pytest
import yaml

from tenfold_core.cli import App, arg, config_to_dict, parse_config
from tenfold_core.errors import ConfigError, DataError


@dataclass
class Inner:
    lr: float = 1e-3
    name: Literal["adam", "sgd"] = "adam"


@dataclass
class Cfg:
    path: str = arg("x", help="a path", positional=True)
    steps: int = arg(10, help="steps (100% of them)")
    widths: list[int] = arg([1, 2], help="widths")
    flag: bool = False
    maybe: float | None = None
    optim: Inner = field(default_factory=Inner)


def make_app(record):
    app = App("toy", "a toy app")

    @app.command("run", Cfg, help="run it")
    def run(cfg: Cfg):
        record.append(cfg)
        if cfg.path == "bad.tsv":
            raise DataError("bad.tsv line 3: label 'x' is not a known label")
        return 0

    return app


def test_flags_nested_lists_bools():
    rec = []
    make_app(rec).run(
        ["run", "p", "--steps", "5", "--widths", "4,8", "--flag", "--optim.lr", "0.1", "--maybe", "none"]
    )
    c = rec[0]
    assert (c.path, c.steps, c.widths, c.flag, c.optim.lr, c.maybe) == ("p", 5, [4, 8], True, 0.1, None)
    make_app(rec).run(["run", "--widths", "[3, 5]", "--no-flag", "--optim.name", "sgd"])
    assert (
        rec[1].widths == [3, 5] and rec[1].flag is False and rec[1].optim.name == "sgd" and rec[1].path == "x"
    )


def test_yaml_config_and_override(tmp_path, capsys):
    f = tmp_path / "c.yaml"
    f.write_text("steps: 7\noptim:\n  lr: 0.5\n")
    rec = []
    make_app(rec).run(["run", "--config", str(f), "--optim.name", "sgd"])
    assert rec[0].steps == 7 and rec[0].optim.lr == 0.5 and rec[0].optim.name == "sgd"
    make_app(rec).run(["run", "--config", str(f), "--steps", "9", "--print-config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["steps"] == 9 and printed["optim"] == {"lr": 0.5, "name": "adam"}
    assert len(rec) == 1  # --print-config does not run the verb


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--steps", "many"], "'steps': expected an integer, got 'many'"),
        (["run", "--optim.name", "rmsprop"], "'optim.name': expected one of 'adam', 'sgd'"),
        (["run", "--config", "/nonexistent.yaml"], "no such file"),
        (["run", "bad.tsv"], "bad.tsv line 3"),
        (["run", "--nope", "1"], "unrecognized arguments"),
        (["run", "--ste", "5"], "unrecognized arguments"),  # no prefix matching of flags
        (["run", "--optim.l", "0.1"], "unrecognized arguments"),
    ],
)
def test_user_errors_one_line_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        make_app([]).main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_config_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_config(Cfg, {}, str(bad))
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_config(Cfg, {}, str(lst))
    unk = tmp_path / "unk.yaml"
    unk.write_text("stepz: 3\n")
    with pytest.raises(ConfigError, match="unknown key 'stepz'"):
        parse_config(Cfg, {}, str(unk))


def test_config_to_dict_roundtrip():
    c = parse_config(Cfg, {"optim.lr": "0.2", "widths": "1,2,3"})
    d = config_to_dict(c)
    assert d["optim"]["lr"] == 0.2 and d["widths"] == [1, 2, 3]
    assert parse_config(Cfg, {k: v for k, v in d.items() if k != "optim"} | {"optim.lr": 0.2}) == c


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as e:
        make_app([]).main(["run", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--optim.lr" in out and "--print-config" in out and "steps (100% of them)" in out


def test_tenfold_demo_command_runs():
    r = subprocess.run(
        [sys.executable, "-m", "tenfold_core.demo_all", "--only", "nonexistent-pkg"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "no installed package" in r.stderr


# ------------------------------------------------------------------ defect 1: nested sections keep their default
from tenfold_core.config import OptimConfig, TrainConfig  # noqa: E402


@dataclass
class TrainVerb:
    train: TrainConfig = arg(factory=lambda: TrainConfig(max_epochs=30, monitor="val_acc", mode="max"))
    optim: OptimConfig = arg(factory=lambda: OptimConfig(lr=0.05, name="sgd"))


def test_nested_section_keeps_field_default_instance():
    cfg = parse_config(TrainVerb, {"train.max_epochs": "5"})
    assert cfg.train.max_epochs == 5
    assert cfg.train.monitor == "val_acc" and cfg.train.mode == "max"  # was reset to the class defaults
    assert cfg.optim == OptimConfig(lr=0.05, name="sgd")
    cfg = parse_config(TrainVerb, {"optim.lr": "0.1"})
    assert cfg.optim.name == "sgd" and cfg.optim.lr == 0.1 and cfg.train.max_epochs == 30


def test_help_shows_section_default_instance(capsys):
    app = App("toy")
    app.command("train", TrainVerb, trains=True)(lambda c: 0)
    with pytest.raises(SystemExit):
        app.main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "default: 'val_acc'" in out and "default: 30" in out
    assert app.training_verbs == ["train"]


def test_version_and_top_help(capsys):
    app = App("toy", "toy tool", version="1.2.3")
    app.command("train", TrainVerb)(lambda c: 0)
    with pytest.raises(SystemExit) as e:
        app.main(["--version"])
    assert e.value.code == 0 and "toy 1.2.3" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ presets
@pytest.fixture
def toypkg(tmp_path, monkeypatch):
    """A source-checkout-shaped package: packages/toypkg/src/toypkg + packages/toypkg/configs."""
    root = tmp_path / "toypkg"
    src = root / "src" / "toypkg"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "cli.py").write_text(
        "from dataclasses import dataclass\n"
        "from tenfold_core.cli import App, arg\n"
        "from tenfold_core.config import TrainConfig\n"
        "@dataclass\nclass C:\n    steps: int = arg(10, help='steps')\n    name: str = 'a'\n"
        "    train: TrainConfig = arg(factory=lambda: TrainConfig(monitor='val_acc', mode='max'))\n"
        "app = App('toypkg', 'toy', version='0.1', package='toypkg')\n"
        "RAN = []\n"
        "@app.command('train', C, help='train it', trains=True)\ndef train(cfg):\n    RAN.append(cfg)\n"
        "main = app.main\n"
    )
    (root / "configs").mkdir()
    (root / "configs" / "tiny.yaml").write_text(
        "train:\n  steps: 3\n  name: tiny\n  train:\n    max_epochs: 2\nother: {}\n"
    )
    monkeypatch.syspath_prepend(str(root / "src"))
    for m in [m for m in sys.modules if m.startswith("toypkg")]:
        monkeypatch.delitem(sys.modules, m)
    return root


def test_preset_precedence_preset_config_flags(toypkg, tmp_path, capsys):
    import toypkg.cli as tc

    from tenfold_core.cli import load_preset

    c = load_preset("toypkg", "tiny", "train")
    assert (c.steps, c.name, c.train.max_epochs, c.train.monitor) == (3, "tiny", 2, "val_acc")
    c = load_preset("toypkg", "tiny", "train", overrides={"steps": 4, "train.out_dir": "x"})
    assert c.steps == 4 and c.train.out_dir == "x" and c.train.max_epochs == 2
    f = tmp_path / "over.yaml"
    f.write_text("name: fromfile\nsteps: 7\n")
    tc.app.run(["train", "--preset", "tiny", "--config", str(f), "--steps", "9"])
    c = tc.RAN[-1]
    assert (c.steps, c.name, c.train.max_epochs) == (9, "fromfile", 2)
    tc.app.run(["train", "--preset", "tiny", "--print-config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["steps"] == 3 and printed["train"]["monitor"] == "val_acc"


def test_preset_errors_are_one_line(toypkg, capsys):
    import toypkg.cli as tc

    for argv, msg in [
        (["train", "--preset", "nope"], "known: tiny"),
        (["train", "--preset", "../x"], "expected a preset name"),
    ]:
        with pytest.raises(SystemExit) as e:
            tc.app.main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and msg in err and err.count("\n") == 1
    (toypkg / "configs" / "demo.yaml").write_text("evaluate: {}\n")
    with pytest.raises(ConfigError, match="no section for verb 'train'"):
        tc.app.run(["train", "--preset", "demo"])
    (toypkg / "configs" / "bad.yaml").write_text("train:\n  stepz: 1\n")
    with pytest.raises(ConfigError, match=r"--preset bad.*unknown key 'stepz'"):
        tc.app.run(["train", "--preset", "bad"])


def test_print_config_round_trips_through_config(toypkg, tmp_path, capsys):
    import toypkg.cli as tc

    tc.app.run(["train", "--preset", "tiny", "--train.max_epochs", "4", "--print-config"])
    text = capsys.readouterr().out
    f = tmp_path / "c.yaml"
    f.write_text(text)
    tc.app.run(["train", "--config", str(f)])
    assert config_to_dict(tc.RAN[-1]) == yaml.safe_load(text)


def test_train_config_validation_refuses_nonsense():
    for bad in [{"train.max_epochs": "0"}, {"train.precision": "7-bit"}, {"train.devices": "0"},
                {"train.devices": "two"}, {"optim.lr": "nan"}, {"optim.lr": "inf"}, {"optim.lr": "-1"},
                {"optim.schedule": "step"}, {"optim.milestones": "5,3", "optim.schedule": "step"}]:  # fmt: skip
        with pytest.raises(ConfigError):
            parse_config(TrainVerb, bad)
    ok = parse_config(
        TrainVerb, {"optim.schedule": "step", "optim.milestones": "3,5", "optim.interval": "epoch"}
    )
    assert ok.optim.milestones == [3, 5] and ok.optim.interval == "epoch"


def test_core_light_modules_do_not_import_torch():
    code = (
        "import sys, tenfold_core, tenfold_core.cli, tenfold_core.config, tenfold_core.errors\n"
        "heavy = [m for m in ('torch', 'numpy', 'lightning', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("value", ["[1,", "[", "[{a: [", "[1, 2]]"])
def test_broken_yaml_in_a_list_flag_is_a_config_error(value):  # found by tests/test_fuzz.py
    with pytest.raises(ConfigError, match="'widths': expected a list of an integer"):
        parse_config(Cfg, {"widths": value})


def test_training_verbs_check_out_dir_and_devices_before_running(tmp_path, capsys):
    from tenfold_core.config import TrainConfig

    @dataclass
    class TrainCmd:
        train: TrainConfig = field(default_factory=TrainConfig)

    ran = []
    app = App("toy", "a toy app")
    app.command("fit", TrainCmd, help="train", trains=True)(lambda cfg: ran.append(cfg) or 0)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for argv, message in [
        (["fit", "--train.out_dir", str(a_file / "run")], "is a file, not a folder"),
        (["fit", "--train.out_dir", str(tmp_path / "ok"), "--train.accelerator", "cpu", "--train.devices", "99"],
         "train.devices 99"),
    ]:  # fmt: skip
        with pytest.raises(SystemExit) as e:
            app.main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and message in err and err.count("\n") == 1
    assert not ran  # the verb never started
    app.main(["fit", "--train.out_dir", str(tmp_path / "ok"), "--train.accelerator", "cpu"])
    assert len(ran) == 1


# ---------------------------------------------------------------------------------- lazy verbs, one output style
@dataclass
class _Verb:
    n: int = arg(2, help="n")


def test_lazy_run_target_imports_on_call_and_prints_json(tmp_path, monkeypatch, capsys):
    mod = tmp_path / "lazy_verb_mod.py"
    mod.write_text(
        "import math\nCALLS = []\ndef go(cfg):\n    CALLS.append(cfg.n)\n"
        "    return {'n': cfg.n, 'bad': math.nan, 'path': __import__('pathlib').Path('a')}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    app = App("lz")
    app.command("go", _Verb, help="run lazily", run="lazy_verb_mod:go")
    assert "lazy_verb_mod" not in sys.modules  # registering imports nothing
    assert "run lazily" in app._parser().format_help()
    res = app.run(["go", "--n", "5"])
    out = capsys.readouterr().out
    assert res["n"] == 5 and sys.modules["lazy_verb_mod"].CALLS == [5]
    assert yaml.safe_load(out) == {"n": 5, "bad": None, "path": "a"}  # NaN is null, default=str
    assert out.startswith('{\n  "n": 5')  # indent 2
    with pytest.raises(ValueError, match="package.module:function"):
        app.command("bad", _Verb, run="no_colon")


def test_decorator_form_prints_returned_dict_and_show_picks_what_is_printed(capsys, monkeypatch):
    app = App("dc")

    @app.command("a", _Verb, help="a")
    def a(cfg):
        return {"twice": cfg.n * 2}

    app.command(
        "b", _Verb, help="b", run="tenfold_core.cli:config_to_dict", show=lambda r, cfg: f"n is {r['n']}"
    )
    app.command("c", _Verb, help="c", run="tenfold_core.cli:config_to_dict", show=lambda r, cfg: None)
    assert app.run(["a", "--n", "3"]) == {"twice": 6}
    assert yaml.safe_load(capsys.readouterr().out) == {"twice": 6}
    assert app.run(["b"]) == {"n": 2} and capsys.readouterr().out == "n is 2\n"
    assert app.run(["c"]) == {"n": 2} and capsys.readouterr().out == ""
    monkeypatch.setenv("LOCAL_RANK", "1")  # other ranks print nothing
    app.run(["a"])
    assert capsys.readouterr().out == ""
    assert app.main(["a"]) == 0
