"""Benchmark: multi-step LIF forward and forward+backward, ours (reference, fused) vs spikingjelly, same process.

CPU: x = [T, 32, 16384] float32; CUDA (if present): x = [T, 64, 65536] float16. T in {4, 16}.
Also prints the memory bound (bytes a fused fwd+bwd must move / bandwidth of a streaming torch add measured in
this run) and the first-call overhead of the fused CPU kernel (fresh process; warm and cold numba cache).

Run: ``.venv/bin/python bench/lif.py`` (optional ``--reps N``, ``--threads N``, ``--no-first-call``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from tenfold_core.spiking import lif_multi_step

CFG = dict(tau=2.0, v_threshold=1.0, v_reset=0.0, surrogate="atan", detach_reset=True)


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timeit(fn, dev, reps: int, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` in ms."""
    for _ in range(warmup):
        fn()
    _sync(dev)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        _sync(dev)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def streaming_bandwidth(dev, dtype, reps: int) -> float:
    """Bytes/s of ``torch.add(a, b, out=c)`` on 3 x 128 MiB-ish buffers (2 reads + 1 write)."""
    n = (128 << 20) // torch.tensor([], dtype=dtype).element_size()
    a, b, c = (torch.rand(n, device=dev).to(dtype) for _ in range(3))
    ms = timeit(lambda: torch.add(a, b, out=c), dev, reps)
    return 3 * n * a.element_size() / (ms * 1e-3)


def sj_node(dev):
    try:
        from spikingjelly.activation_based import neuron, surrogate
    except Exception:
        return None
    return neuron.LIFNode(
        tau=CFG["tau"],
        v_threshold=CFG["v_threshold"],
        v_reset=CFG["v_reset"],
        surrogate_function=surrogate.ATan(),
        detach_reset=CFG["detach_reset"],
        step_mode="m",
    ).to(dev)


def bench_device(dev, shape_tail, dtype, reps):
    bw = streaming_bandwidth(dev, dtype, reps)
    esize = torch.tensor([], dtype=dtype).element_size()
    print(
        f"\n== {dev.type}: x = [T, {', '.join(map(str, shape_tail))}] {dtype}; torch threads {torch.get_num_threads()}"
    )
    print(f"streaming add bandwidth: {bw / 1e9:.1f} GB/s")
    node = sj_node(dev)

    def ours(backend):
        return lambda x: lif_multi_step(x, backend=backend, **CFG)

    def sj(x):
        node.reset()
        return node(x)

    impls = {"ref": ours("reference"), "fast": ours("fast")}
    if node is not None:
        impls["spikingjelly"] = sj
    rows = []
    for T in (4, 16):
        x = torch.randn(T, *shape_tail, device=dev).to(dtype).requires_grad_(True)
        g = torch.randn_like(x)
        n = x.numel()
        # fused fwd+bwd must at least read x, write S and H (fwd), read H and dS, write dX (bwd): 6 x elem size
        bound_ms = 6 * esize * n / bw * 1e3
        res = {}
        for name, f in impls.items():

            def fwd(f=f, x=x):
                return f(x)

            def fwdbwd(f=f, x=x, g=g):
                x.grad = None
                f(x).backward(g)

            r = reps if name != "ref" else max(3, reps // 3)
            res[name] = (timeit(fwd, dev, r), timeit(fwdbwd, dev, r))
        rows.append((T, res, bound_ms))
        line = " | ".join(f"{k} fwd {v[0]:8.2f} ms, fwd+bwd {v[1]:8.2f} ms" for k, v in res.items())
        print(f"T={T:2d}: {line}")
        fast = res["fast"]
        print(
            f"      memory bound (fwd+bwd, {6 * esize} B/elem): {bound_ms:.2f} ms -> fast/bound = {fast[1] / bound_ms:.2f}x"
        )
        print(
            f"      speed-up of fast: vs ref fwd {res['ref'][0] / fast[0]:.1f}x, fwd+bwd {res['ref'][1] / fast[1]:.1f}x",
            end="",
        )
        if "spikingjelly" in res:
            sjr = res["spikingjelly"]
            print(f"; vs spikingjelly fwd {sjr[0] / fast[0]:.1f}x, fwd+bwd {sjr[1] / fast[1]:.1f}x")
        else:
            print("; spikingjelly not installed")
    return rows


FIRST_CALL = r"""
import time
t0 = time.perf_counter()
import torch
from tenfold_core.spiking import lif_multi_step
t1 = time.perf_counter()
x = torch.randn(4, 8, 1000, requires_grad=True)
lif_multi_step(x, backend="fast").sum().backward()
t2 = time.perf_counter()
lif_multi_step(x, backend="fast").sum().backward()
t3 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.4f}")
"""


def first_call(cold: bool) -> str:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        if cold:
            env["NUMBA_CACHE_DIR"] = tmp
        out = subprocess.run(
            [sys.executable, "-c", FIRST_CALL], env=env, capture_output=True, text=True, check=True
        )
    imp, first, second = (float(v) for v in out.stdout.split())
    return f"import {imp:.2f} s, first fwd+bwd {first:.2f} s, second {second * 1e3:.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-first-call", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, CPU threads {args.threads}")
    if not args.no_first_call:
        print(f"first call (fresh process, warm numba cache): {first_call(cold=False)}")
        print(f"first call (fresh process, empty numba cache): {first_call(cold=True)}")
    bench_device(torch.device("cpu"), (32, 16384), torch.float32, args.reps)
    if torch.cuda.is_available():
        print(f"card: {torch.cuda.get_device_name()}")
        bench_device(torch.device("cuda"), (64, 65536), torch.float16, args.reps)


if __name__ == "__main__":
    main()
