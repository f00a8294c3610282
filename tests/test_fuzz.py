"""Issue 21: bad input never gives a traceback, a hang or a silent success — for every verb of every package.

Verbs are discovered from each package's App (``X.cli.app.commands``), so a package added later is fuzzed too.

1. Hypothesis feeds random and malformed values (huge, negative, NaN, empty, broken YAML, missing paths, ...) to
   random fields of every verb's config, with ``--print-config`` as the dry path: the CLI must exit 0 or 2 and never
   raise (a raised exception is a traceback for the user).
2. Values that are nonsense for every training verb (``--optim.lr nan``, ``--train.max_epochs 0``, ...) must be
   refused with exit 2 and one line.
3. Real runs with malformed files, one process per package (two packages at a time): a garbage ``--train.resume``
   checkpoint, an out dir that is a file, 99 devices, garbage files in every path-like field. Each case must end
   with exit 0 or 2, no traceback, within a per-case time limit.
"""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
import typing
from pathlib import Path

import _members
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

GARBAGE = ["", " ", "nan", "-nan", "inf", "-inf", "-1", "0", "-0.0", "1e9", "1e400", "10000000000000000000000",
           "[1,", "{a: 1}", "[]", "{}", "null", "~", "true", "yes", "1,2,,3", "/nonexistent/x.tsv", ".", "..",
           "💥", "a\tb", "0x10", "1_000", "--", "None"]  # fmt: skip


def _strip_optional(tp):
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _values_for(tp):
    base = _strip_optional(tp)
    if base is bool:
        specific = st.sampled_from(["true", "false", "maybe", "2"])
    elif base is int:
        specific = st.integers(-(10**12), 10**12).map(str)
    elif base is float:
        specific = st.floats(allow_nan=True, allow_infinity=True).map(repr)
    elif typing.get_origin(base) is typing.Literal:
        specific = st.sampled_from([str(a) for a in typing.get_args(base)] + ["bogus"])
    else:
        specific = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                           max_size=12)  # fmt: skip
    return st.one_of(specific, st.sampled_from(GARBAGE))


def _preset_args(name: str, verb: str) -> list[str]:
    member = _members.ROOT / "packages" / name
    if verb in _members.preset_sections(member, "tiny"):
        return ["--preset", "tiny"]
    return []


def _call(app, argv):
    """(exit code, stderr) of ``app.main(argv)``; any exception other than SystemExit propagates (= a traceback)."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = app.main(argv)
        except SystemExit as e:
            code = e.code
    return code, err.getvalue()


def _fuzzer(name, app, verb, pos, preset, fields):
    @settings(max_examples=15, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])  # fmt: skip
    @given(data=st.data())
    def fuzz(data):
        picks = data.draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True))
        argv = [verb, *pos, *preset]
        for key, tp in picks:
            argv.append(f"--{key}={data.draw(_values_for(tp))}")
        try:
            code, err = _call(app, [*argv, "--print-config"])
        except Exception as e:
            raise AssertionError(f"{name} {' '.join(argv)}: raised {type(e).__name__}: {e}") from e
        assert code in (0, 2, None), f"{name} {' '.join(argv)}: exit {code}"
        if code == 2:
            assert "Traceback" not in err and err.strip().count("\n") == 0, f"{' '.join(argv)}: {err[-500:]}"

    return fuzz


@pytest.mark.parametrize("name", _members.NAMES)
def test_random_config_values_never_traceback(name):
    app = _members.app_of(name)
    assert app.commands
    for verb, cmd in app.commands.items():
        fields = [
            (k, tp) for k, tp, f in _members.leaf_fields(cmd.config) if not f.metadata.get("positional")
        ]
        pos = ["placeholder"] * len(_members.required_positionals(cmd.config))
        preset = _preset_args(name, verb)
        if not fields:
            continue

        _fuzzer(name, app, verb, pos, preset, fields)()


NONSENSE = [("--optim.lr", "nan"), ("--optim.lr", "-0.1"), ("--train.max_epochs", "0"), ("--train.precision", "7-bit"),
            ("--train.devices", "0"), ("--train.accumulate", "0"), ("--train.monitor", "test_acc")]  # fmt: skip


@pytest.mark.parametrize("name", _members.NAMES)
def test_nonsense_training_values_are_refused(name):
    app = _members.app_of(name)
    assert app.training_verbs, f"{name}: no verb is registered with trains=True"
    for verb in app.training_verbs:
        for flag, value in NONSENSE:
            code, err = _call(app, [verb, *_preset_args(name, verb), flag, value, "--print-config"])
            assert code == 2, f"{name} {verb} {flag} {value}: accepted (exit {code})"
            assert flag.lstrip("-").split(".")[-1] in err and err.count("\n") == 1, err


# ---------------------------------------------------------------------------------- real runs, malformed files
DRIVER = Path(__file__).with_name("_fuzz_driver.py")
CASE_LIMIT_S = 120


def _cases(name: str, tmp: Path) -> list[dict]:
    """Malformed-file cases for the package: (verb, argv, what is wrong)."""
    app = _members.app_of(name)
    garbage = tmp / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 8)
    afile = tmp / "a_file"
    afile.write_text("not a folder\n")
    yaml_list = tmp / "list.yaml"
    yaml_list.write_text("- 1\n- 2\n")
    cases = []
    for verb in app.training_verbs:
        base = [
            verb,
            *_preset_args(name, verb),
            "--train.accelerator",
            "cpu",
            "--train.progress_bar",
            "false",
        ]
        out = str(tmp / f"{verb}-out")
        cases += [
            {"argv": [*base, "--train.out_dir", out, "--train.resume", str(garbage)], "expect": 2,
             "mention": garbage.name},
            {"argv": [*base, "--train.out_dir", str(afile)], "expect": 2, "mention": afile.name},
            {"argv": [*base, "--train.out_dir", out + "-99", "--train.devices", "99"], "expect": 2,
             "mention": "devices"},
        ]  # fmt: skip
    for verb, cmd in app.commands.items():
        cases.append({"argv": [verb, "--config", str(yaml_list)], "expect": 2, "mention": yaml_list.name})
        if cmd.trains or verb == "demo":
            continue
        for key, tp, f in _members.leaf_fields(cmd.config):
            leaf = key.split(".")[-1]
            base_tp = _strip_optional(tp)
            pathlike = base_tp in (str, Path) and any(w in leaf for w in ("path", "run", "checkpoint", "input", "file", "data", "dir", "model"))  # fmt: skip
            if not pathlike or leaf.startswith("out") or leaf in ("out",):
                continue
            flag = key if f.metadata.get("positional") else f"--{key}"
            pos = (
                []
                if f.metadata.get("positional")
                else ["placeholder"] * len(_members.required_positionals(cmd.config))
            )
            for bad in (garbage, tmp / "missing" / "nothing.tsv"):
                argv = [verb, *pos, *_preset_args(name, verb)]
                argv += [str(bad)] if f.metadata.get("positional") else [flag, str(bad)]
                cases.append({"argv": argv, "expect": None, "mention": None})
    return cases[:40]


def _job(name: str):
    tmp = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    try:
        cases = _cases(name, tmp)
    except Exception as e:
        return tmp, None, f"{type(e).__name__}: {e}"
    spec = tmp / "cases.json"
    spec.write_text(json.dumps(cases))
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", MPLBACKEND="Agg")
    timeout = CASE_LIMIT_S * len(cases) + 120
    try:
        r = subprocess.run([sys.executable, str(DRIVER), name, str(spec), str(CASE_LIMIT_S)], cwd=tmp,
                           capture_output=True, text=True, env=env, timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired:
        return tmp, None, f"the driver did not finish in {timeout} s"
    results = [
        json.loads(ln[len("TENFOLD-FUZZ ") :])
        for ln in r.stdout.splitlines()
        if ln.startswith("TENFOLD-FUZZ ")
    ]
    return tmp, results, None if r.returncode == 0 else r.stderr[-3000:]


POOL = _members.Pool(_job)


@pytest.mark.slow
@pytest.mark.parametrize("name", _members.NAMES)
def test_malformed_files_in_real_runs(name, request):
    tmp, results, problem = POOL.result(request, name)
    try:
        assert results is not None, problem
        assert results, f"{name}: no case ran ({problem})"
        bad = []
        for r in results:
            where = " ".join(r["argv"])
            if r["timeout"]:
                bad.append(f"{where}: still running after {CASE_LIMIT_S} s (hang?)")
            elif r["raised"]:
                bad.append(f"{where}: traceback ({r['raised']})")
            elif r["code"] not in (0, 2):
                bad.append(f"{where}: exit {r['code']}")
            elif r["expect"] is not None and r["code"] != r["expect"]:
                bad.append(f"{where}: exit {r['code']}, expected {r['expect']} (silent success)")
            elif r["code"] == 2 and (
                "Traceback" in r["stderr"] or not r["last_line"].startswith(f"{name}: error:")
            ):
                bad.append(f"{where}: not a one-line error: {r['stderr'][-300:]}")
            elif r["code"] == 2 and r["mention"] and r["mention"] not in r["last_line"]:
                bad.append(f"{where}: the error does not name {r['mention']}: {r['last_line']}")
        assert not bad, f"{name}: {len(bad)} of {len(results)} cases:\n" + "\n".join(bad)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_fuzz_cases_cover_every_training_verb(tmp_path):
    """The case list itself: each training verb gets the resume / out-dir / devices cases (so the suite can fail)."""
    name = next(
        (n for n in _members.NAMES if (_members.ROOT / "packages" / n / "src" / n / "cli.py").is_file()), None
    )
    if name is None:
        pytest.fail("no package has a cli.py")
    app = _members.app_of(name)
    cases = _cases(name, tmp_path)
    assert app.training_verbs, f"{name}: no training verb, so the loop below would check nothing"
    for verb in app.training_verbs:
        flags = [c["argv"] for c in cases if c["argv"][0] == verb]
        assert any("--train.resume" in a for a in flags) and any("99" in a for a in flags)
