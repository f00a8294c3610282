"""Every package's `X demo --out DIR` (offline, CPU, <= 2 min each) writes a flat metrics.json, report.md and plots.

The demos run two at a time (2 cores, single-threaded each) from one pool, started when the first demo test asks.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import _members
import pytest

TIMEOUT_S = 600  # the budget is 2 minutes on an idle machine; this only catches hangs on a loaded one


def _job(name: str):
    out = Path(tempfile.mkdtemp(prefix=f"demo-{name}-"))
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", MPLBACKEND="Agg")
    t0 = time.perf_counter()
    try:
        r = subprocess.run([str(_members.BIN / name), "demo", "--out", str(out / "demo")], cwd=out,
                           capture_output=True, text=True, timeout=TIMEOUT_S, env=env)  # fmt: skip
        rc, err = r.returncode, r.stderr
    except subprocess.TimeoutExpired as e:
        rc, err = -9, f"did not finish in {TIMEOUT_S} s\n{e.stderr or ''}"
    return out, rc, err, time.perf_counter() - t0


POOL = _members.Pool(_job)


@pytest.mark.slow
@pytest.mark.parametrize("name", _members.NAMES)
def test_demo_writes_outputs(name, request):
    assert (_members.BIN / name).exists(), f"console script {name} is not installed"
    root, rc, err, seconds = POOL.result(request, name)
    out = root / "demo"
    try:
        assert rc == 0, err[-3000:]
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics and all(isinstance(v, (int, float, str, bool)) or v is None for v in metrics.values())
        assert any(isinstance(v, float) for v in metrics.values())
        assert (out / "report.md").read_text().strip()
        assert list(out.glob("*.png"))
        print(f"{name} demo: {seconds:.0f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)
