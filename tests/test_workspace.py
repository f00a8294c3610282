"""Cross-package checks: every workspace member is a well-formed, buildable, runnable Tenfold distribution.

Members are discovered (shared/ and packages/*), so a package added later is checked without editing this file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import typing
import zipfile
from pathlib import Path

import _members
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PACKAGES = sorted(p for p in (ROOT / "packages").glob("*") if (p / "pyproject.toml").is_file())
MEMBERS = [ROOT / "shared", *PACKAGES]


def ids(paths):
    return [p.name for p in paths]


def meta(member: Path) -> dict:
    return tomllib.loads((member / "pyproject.toml").read_text())


def dist_name(member: Path) -> str:
    return "tenfold-core" if member.name == "shared" else f"tenfold-{member.name}"


def script_name(member: Path) -> str:
    return "tenfold" if member.name == "shared" else member.name


def _req_name(req: str) -> str:
    return re.split(r"[\s<>=!~\[;(]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_workspace_root_lists_members():
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert root["tool"]["uv"]["workspace"]["members"] == ["shared", "packages/*"]
    assert "torch" not in str(root["project"]["dependencies"])  # the root is not a library
    assert (ROOT / "uv.lock").is_file()


@pytest.mark.parametrize("member", MEMBERS, ids=ids(MEMBERS))
def test_member_metadata(member):
    m = meta(member)["project"]
    assert m["name"] == dist_name(member)
    assert (member / "README.md").is_file() and len((member / "README.md").read_text()) > 200
    assert script_name(member) in m.get("scripts", {})
    src = member / "src" / ("tenfold_core" if member.name == "shared" else member.name)
    assert (src / "__init__.py").is_file()
    deps = [_req_name(d) for d in m.get("dependencies", [])]
    if member.name != "shared":
        assert "tenfold-core" in deps, "packages depend on tenfold-core"
        others = {dist_name(p) for p in PACKAGES} - {dist_name(member)}
        assert not others & set(deps), "a package never depends on another package"
        assert (member / "tests").is_dir() and list((member / "tests").glob("test_*.py"))
        assert (src / "demo.py").is_file() and (src / "cli.py").is_file()


def test_ci_workflow_has_a_job_per_member():
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    jobs = wf["jobs"]
    assert "lint" in jobs
    include = jobs["member"]["strategy"]["matrix"]["include"]
    entries = {e["dist"]: e["path"] for e in include}
    for member in MEMBERS:
        assert entries.get(dist_name(member)) == str(member.relative_to(ROOT)), (
            f"no CI job for {dist_name(member)}"
        )
    steps = " ".join(s.get("run", "") for s in jobs["member"]["steps"])
    assert "uv sync --package ${{ matrix.dist }}" in steps and "pytest ${{ matrix.path }}/tests" in steps


def test_ci_entry_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme and "make demo" in readme


@pytest.mark.parametrize("member", MEMBERS, ids=ids(MEMBERS))
def test_cli_help(member):
    exe = BIN / script_name(member)
    assert exe.exists(), f"console script {exe.name} is not installed (run make setup)"
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    if member.name != "shared":
        assert "demo" in r.stdout
        bad = subprocess.run(
            [str(exe), "demo", "--no-such-flag", "1"], capture_output=True, text=True, timeout=120
        )
        assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.strip().count("\n") == 0


@pytest.fixture(scope="session")
def wheels(tmp_path_factory):
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    out = tmp_path_factory.mktemp("dist")
    for member in MEMBERS:
        r = subprocess.run(
            [uv, "build", "--wheel", "--quiet", "--out-dir", str(out), str(member)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, f"{member.name}: {r.stderr[-2000:]}"
    return out


@pytest.mark.parametrize("member", MEMBERS, ids=ids(MEMBERS))
def test_wheel_builds_with_dependencies(member, wheels):
    stem = dist_name(member).replace("-", "_")
    found = list(wheels.glob(f"{stem}-*.whl"))
    assert len(found) == 1
    with zipfile.ZipFile(found[0]) as z:
        md = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(md).decode()
        names = z.namelist()
        entry = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    requires = [
        _req_name(line.split(":", 1)[1])
        for line in text.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    for dep in meta(member)["project"]["dependencies"]:
        assert _req_name(dep) in requires
    pkg = "tenfold_core" if member.name == "shared" else member.name
    assert any(n.startswith(f"{pkg}/") and n.endswith("__init__.py") for n in names)
    assert f"{script_name(member)} =" in entry


# ------------------------------------------------------------------------------------- the package template
TEMPLATE = ["model.py", "config.py", "losses.py", "data.py", "train.py", "evaluate.py", "cli.py", "demo.py"]
PRESETS = ["demo.yaml", "paper.yaml", "tiny.yaml"]


@pytest.mark.parametrize("member", PACKAGES, ids=ids(PACKAGES))
def test_package_template(member):
    src = member / "src" / member.name
    missing = [f for f in TEMPLATE if not (src / f).is_file()]
    missing += [f"configs/{f}" for f in PRESETS if not (member / "configs" / f).is_file()]
    assert not missing, f"{member.name} lacks {', '.join(missing)}"
    for f in PRESETS:  # a preset maps verb names to that verb's config mapping
        data = yaml.safe_load((member / "configs" / f).read_text()) or {}
        assert isinstance(data, dict) and all(isinstance(v, dict) or v is None for v in data.values()), f


def _print_config(app, verb: str, extra: list[str], capsys) -> str:
    capsys.readouterr()
    app.run([verb, *extra, "--print-config"])
    return capsys.readouterr().out


@pytest.mark.parametrize("member", PACKAGES, ids=ids(PACKAGES))
def test_every_verb_print_config_round_trips_through_config(member, tmp_path, capsys):
    """`X verb [--preset P] --print-config` > f.yaml; `X verb --config f.yaml --print-config` prints the same."""
    app = _members.app_of(member.name)
    assert app.package == member.name, f"{member.name}: App(..., package={member.name!r}) enables --preset"
    tiny, demo = _members.preset_sections(member, "tiny"), _members.preset_sections(member, "demo")
    checked = []
    for verb, cmd in app.commands.items():
        preset = ["--preset", "tiny"] if verb in tiny else ["--preset", "demo"] if verb in demo else []
        pos = ["placeholder"] * len(_members.required_positionals(cmd.config))
        first = _print_config(app, verb, [*pos, *preset], capsys)
        f = tmp_path / f"{verb}.yaml"
        f.write_text(first)
        again = _print_config(app, verb, ["--config", str(f)], capsys)
        assert yaml.safe_load(again) == yaml.safe_load(first), (
            f"{member.name} {verb}: --config does not round-trip"
        )
        checked.append(verb)
    assert "demo" in checked


@pytest.mark.parametrize("member", PACKAGES, ids=ids(PACKAGES))
def test_training_verbs_share_the_core_config_keys(member):
    from tenfold_core.config import OptimConfig, TrainConfig

    app = _members.app_of(member.name)
    assert app.training_verbs, f"{member.name}: no verb is registered with trains=True"
    for verb in app.training_verbs:
        cls = app.commands[verb].config
        hints = typing.get_type_hints(cls)
        assert issubclass(hints.get("train", object), TrainConfig), (
            f"{verb}: needs a 'train: TrainConfig' section"
        )
        assert issubclass(hints.get("optim", object), OptimConfig), (
            f"{verb}: needs an 'optim: OptimConfig' section"
        )
        keys = {k for k, _, _ in _members.leaf_fields(cls)}
        for k in ("train.max_epochs", "train.devices", "train.strategy", "train.out_dir", "optim.lr"):
            assert k in keys, f"{member.name} {verb}: no --{k}"
        assert not {"train.epochs", "train.device"} & keys


# ----------------------------------------------------------------------------------- lighter installs (wheels)
HEAVY = {"numba", "textattack", "nltk", "sacrebleu"}


def _wheel_requires(wheels: Path) -> dict[str, list[str]]:
    out = {}
    for whl in wheels.glob("*.whl"):
        with zipfile.ZipFile(whl) as z:
            md = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        name = next(line.split(":", 1)[1].strip() for line in md.splitlines() if line.startswith("Name:"))
        out[_req_name(name)] = [
            line.split(":", 1)[1].strip() for line in md.splitlines() if line.startswith("Requires-Dist:")
        ]
    return out


def workspace_closure(requires: dict[str, list[str]], roots: list) -> set[str]:
    """Third-party distributions named by ``roots`` (with their extras), following workspace wheels recursively."""
    from packaging.requirements import Requirement

    seen, third = set(), set()
    todo = [r if isinstance(r, tuple) else (r, frozenset()) for r in roots]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for line in requires[name]:
            req = Requirement(line)
            if req.marker is not None and not any(
                req.marker.evaluate({"extra": e}) for e in (extras or {""})
            ):
                continue
            dep = _req_name(req.name)
            if dep in requires:
                todo.append((dep, frozenset(req.extras)))
            else:
                third.add(dep)
    return third


def test_funet_install_pulls_no_text_spiking_or_attack_extras(wheels):
    """`pip install ./shared ./packages/funet` installs none of numba, textattack, nltk, sacrebleu (wheel metadata)."""
    requires = _wheel_requires(wheels)
    third = workspace_closure(requires, ["tenfold-core", "tenfold-funet"])
    assert "torch" in third and not HEAVY & third, sorted(HEAVY & third)
    # the extras do bring them (so the closure above would see them if funet asked for an extra)
    assert "numba" in workspace_closure(requires, [("tenfold-core", frozenset({"spiking"}))])
    assert {"textattack", "nltk"} <= workspace_closure(requires, [("tenfold-core", frozenset({"attack"}))])


def test_funet_install_resolves_without_heavy_packages(tmp_path):
    """The same, fully resolved (third-party transitive dependencies too) with `uv pip compile`."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    req = tmp_path / "req.in"
    req.write_text(f"{ROOT / 'shared'}\n{ROOT / 'packages' / 'funet'}\n")
    r = subprocess.run([uv, "pip", "compile", str(req), "--python", sys.executable, "--no-header", "-q"],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    if r.returncode != 0 and ("network" in r.stderr.lower() or "connect" in r.stderr.lower()):
        pytest.skip(f"no package index reachable: {r.stderr.strip().splitlines()[-1]}")
    assert r.returncode == 0, r.stderr[-2000:]
    names = {_req_name(line) for line in r.stdout.splitlines() if line and not line.startswith((" ", "#"))}
    assert "torch" in names and not HEAVY & names, sorted(HEAVY & names)
