"""Run the embedded demo of every installed Tenfold package and print one summary table.

Packages are found as installed distributions named ``tenfold-<name>`` (other than ``tenfold-core``) whose console
script ``<name>`` has a ``demo`` verb; each runs as ``<name> demo --out OUT/<name>`` in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from tenfold_core.report import markdown_table


def discover_packages() -> list[str]:
    names = set()
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name.startswith("tenfold-") and name != "tenfold-core":
            short = name.removeprefix("tenfold-")
            if any(ep.group == "console_scripts" and ep.name == short for ep in dist.entry_points):
                names.add(short)
    return sorted(names)


def _script(name: str) -> list[str]:
    local = Path(sys.executable).parent / name
    if local.exists():
        return [str(local)]
    found = shutil.which(name)
    return [found] if found else [sys.executable, "-m", name]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tenfold demo", description=__doc__)
    p.add_argument("verb", nargs="?", default="demo", choices=["demo"])
    p.add_argument("--only", default=None, help="run only this package's demo")
    p.add_argument("--out", default="runs/demo", help="output folder (one sub-folder per package)")
    args = p.parse_args(argv)
    pkgs = discover_packages()
    if args.only:
        if args.only not in pkgs:
            sys.stderr.write(
                f"tenfold demo: error: no installed package '{args.only}' (found: {', '.join(pkgs) or 'none'})\n"
            )
            return 2
        pkgs = [args.only]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("MPLBACKEND", "Agg")
    rows, failed = [], []
    for name in pkgs:
        out = Path(args.out) / name
        t0 = time.perf_counter()
        print(f"== {name} demo --out {out}", flush=True)
        rc = subprocess.call([*_script(name), "demo", "--out", str(out)], env=env)
        secs = time.perf_counter() - t0
        metrics = {}
        mpath = out / "metrics.json"
        if rc == 0 and mpath.is_file():
            metrics = json.loads(mpath.read_text())
        else:
            failed.append(name)
        headline = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in list(metrics.items())[:6]
        )
        rows.append(
            {
                "package": name,
                "status": "ok" if rc == 0 else f"FAILED ({rc})",
                "seconds": round(secs, 1),
                "headline metrics": headline,
            }
        )
    print()
    if rows:
        print(markdown_table(rows, digits=1))
    else:
        print("No Tenfold packages are installed yet: nothing to demo.")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
