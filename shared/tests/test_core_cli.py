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
