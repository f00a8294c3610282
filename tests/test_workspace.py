"""Cross-package checks: every workspace member is a well-formed, buildable, runnable Tenfold distribution.

Members are discovered (shared/ and packages/*), so a package added later is checked without editing this file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

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


@pytest.mark.parametrize("member", PACKAGES, ids=ids(PACKAGES))
def test_demo_writes_outputs(member, tmp_path):
    exe = BIN / member.name
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", MPLBACKEND="Agg")
    r = subprocess.run(
        [str(exe), "demo", "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, env=env
    )
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics and all(isinstance(v, (int, float, str, bool)) or v is None for v in metrics.values())
    assert any(isinstance(v, float) for v in metrics.values())
    assert (tmp_path / "report.md").read_text().strip()
    assert list(tmp_path.glob("*.png"))
