"""Start-up time of every package's command line (issue 20: `X --help` < 1 s), side by side with bare python.

For each console script (tenfold and every packages/X): median wall time of `X --help`, `X --version` and
`X <first verb> --print-config` over a few runs, and `python -c pass` as the floor. Also which heavy modules
`import X.cli` loads (none of torch, lightning, transformers, scipy is the goal).
Run: OMP_NUM_THREADS=1 python bench/cli_startup.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HEAVY = ("torch", "lightning", "transformers", "scipy", "numba", "sklearn")


def wall(cmd: list[str], repeats: int) -> tuple[float, int]:
    times, rc = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, capture_output=True, env=dict(os.environ, OMP_NUM_THREADS="1")).returncode
        times.append(time.perf_counter() - t0)
    return statistics.median(times), rc


def heavy_imports(pkg: str) -> list[str]:
    code = f"import sys, {pkg}.cli; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return r.stdout.split() if r.returncode == 0 else [f"import failed: {r.stderr.strip().splitlines()[-1:]}"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    floor, _ = wall([sys.executable, "-c", "pass"], a.repeats)
    print(f"load average {os.getloadavg()[0]:.1f}; python -c pass: {floor:.3f} s")
    print(f"{'script':14s}{'--help':>9s}{'--version':>11s}{'print-config':>14s}  heavy modules on import")
    pkgs = sorted(p.name for p in (ROOT / "packages").glob("*") if (p / "pyproject.toml").is_file())
    for name in pkgs:
        exe = BIN / name
        if not exe.exists():
            print(f"{name:14s} (console script not installed)")
            continue
        h, rc = wall([str(exe), "--help"], a.repeats)
        v, _ = wall([str(exe), "--version"], a.repeats)
        pc = float("nan")
        try:
            sys.path.insert(0, str(ROOT / "tests"))
            from tenfold_core.cli import find_app

            verb = next(iter(find_app(name).commands))
            pc, _ = wall([str(exe), verb, "--print-config"], a.repeats)
        except Exception:
            pass
        flag = "" if rc == 0 else f" (exit {rc})"
        print(f"{name:14s}{h:9.2f}{v:11.2f}{pc:14.2f}  {' '.join(heavy_imports(name)) or '-'}{flag}")


if __name__ == "__main__":
    main()
