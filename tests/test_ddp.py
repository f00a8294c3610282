"""Issue 10 defect 5: every training verb of every package trains under DDP (2 CPU processes, gloo) from its tiny
preset: `X <verb> --preset tiny --train.strategy ddp --train.devices 2 --train.accelerator cpu --train.out_dir TMP`.

One process pair per package runs all of its training verbs (tests/_ddp_launch.py): Lightning's import costs ~17 s
per process here, so a fresh pair per verb would not fit the make-test budget. A package without a tiny preset for
a training verb fails (it is not skipped).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import _members
import pytest

LAUNCH = Path(__file__).with_name("_ddp_launch.py")
TIMEOUT_S = 900


_PORTS: set[int] = set()
_PORT_LOCK = threading.Lock()


def _unique_free_port() -> int:
    """A free port no other job of this session was given: two packages' DDP pairs run at once, and Lightning's own
    free-port pick in each launcher can race, so that one package's rank 1 joins the other's group (a hang)."""
    with _PORT_LOCK:
        while True:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _PORTS:
                _PORTS.add(port)
                return port


def _run(name: str, out: Path) -> tuple[int, str, str | None, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    for k in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_PORT", "RANK"):
        env.pop(k, None)
    env["MASTER_ADDR"], env["MASTER_PORT"] = "127.0.0.1", str(_unique_free_port())
    proc = subprocess.Popen([sys.executable, str(LAUNCH), name, str(out)], cwd=out, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # rank 1 too
        stdout, stderr = proc.communicate()
        return -9, stdout, f"did not finish in {TIMEOUT_S} s (a hang?)", stderr
    return proc.returncode, stdout, None, stderr


def _job(name: str):
    out = Path(tempfile.mkdtemp(prefix=f"ddp-{name}-"))
    return out, _run(name, out)


POOL = _members.Pool(_job)


@pytest.mark.slow
@pytest.mark.parametrize("name", _members.NAMES)
def test_every_training_verb_trains_under_ddp(name, request):
    app = _members.app_of(name)
    verbs = app.training_verbs
    assert verbs, f"{name}: no verb is registered with trains=True"
    tiny = _members.preset_sections(_members.ROOT / "packages" / name, "tiny")
    missing = [v for v in verbs if v not in tiny]
    assert not missing, f"{name}: configs/tiny.yaml has no section for {', '.join(missing)}"
    tmp_path, (rc, stdout, hang, stderr) = POOL.result(request, name)
    assert hang is None, f"{name}: {hang}\n{stdout[-2000:]}\n{stderr[-3000:]}"
    lines = [ln for ln in stdout.splitlines() if ln.startswith("TENFOLD-DDP ")]
    status = {}
    for ln in lines:
        fields = dict(kv.split("=", 1) for kv in ln.split(" ", 3)[1:])
        status[(fields["rank"], fields["verb"])] = fields["status"]
    bad = {k: v for k, v in status.items() if v != "ok"}
    assert rc == 0 and not bad, f"{name}: {bad or rc}\n{stderr[-4000:]}"
    for verb in verbs:
        assert status.get(("0", verb)) == "ok" and status.get(("1", verb)) == "ok", (
            f"{verb}: {status}\n{stderr[-3000:]}"
        )

        # exported once, by rank 0: in the verb's out dir, or in one folder per run for verbs that train several
        # models (a sweep, a benchmark, DUAL's two SFT runs)
        def runs_under(folder, skip=()):
            found = [p for p in sorted(folder.rglob("config.json")) if not any(s in p.parents for s in skip)]
            found = [(p, json.loads(p.read_text())) for p in found]
            return [(p, c) for p, c in found if "train" in c]  # run folders, not a verb's own summary files

        runs = runs_under(tmp_path / verb)
        if not runs:  # a verb with its own output folder (a benchmark's cells): anything no other verb wrote
            runs = runs_under(tmp_path, skip=[tmp_path / v for v in verbs if v != verb])
        assert runs, f"{verb}: no run folder exported under {tmp_path / verb}"
        for path, conf in runs:
            assert conf["train"]["strategy"] == "ddp" and str(conf["train"]["devices"]) == "2", path
            assert (path.parent / "model.safetensors").is_file(), path
    shutil.rmtree(tmp_path, ignore_errors=True)
