"""Benchmark: multi-step LIF forward and forward+backward, ours (reference, fused) vs spikingjelly, same process.

CPU: x = [T, 32, 16384] float32; CUDA (if present): x = [T, 64, 65536] float16. T in {4, 16}.
Also prints the memory bound (bytes a fused fwd+bwd must move / bandwidth of a streaming torch add measured in
this run) and the first-call overhead of the fused CPU kernel (fresh process; warm and cold numba cache).

Headline: a plain Python process at 1 thread, glibc's default allocator (what users get). ``--tuned-malloc``
shows the ``mallopt`` figure (no re-mmap of 32 MiB buffers) beside it, labelled; on a loaded machine (load average
above the core count) the numbers are not headline numbers, and the script says so.

Run: ``.venv/bin/python bench/lif.py`` (optional ``--reps N``, ``--threads N``, ``--no-first-call``,
``--tuned-malloc``).
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


def interleaved(fns: dict, dev, reps: dict, warmup: int = 1) -> dict:
    """Median wall time (ms) of each ``fns[name]()``; calls are interleaved round-robin so that load from other
    processes on a shared machine hits every candidate alike. ``reps[name]`` caps the repetitions of slow ones."""
    for f in fns.values():
        for _ in range(warmup):
            f()
    _sync(dev)
    times = {k: [] for k in fns}
    for r in range(max(reps.values())):
        for k, f in fns.items():
            if r >= reps[k]:
                continue
            t0 = time.perf_counter()
            f()
            _sync(dev)
            times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


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
    esize = torch.tensor([], dtype=dtype).element_size()
    print(
        f"\n== {dev.type}: x = [T, {', '.join(map(str, shape_tail))}] {dtype}; torch threads {torch.get_num_threads()}"
    )
    node = sj_node(dev)
    nbuf = (128 << 20) // esize  # streaming add on 3 x 128 MiB buffers (2 reads + 1 write)
    a, b, c = (torch.rand(nbuf, device=dev).to(dtype) for _ in range(3))

    def stream():
        torch.add(a, b, out=c)

    impls = {
        "ref": lambda x: lif_multi_step(x, backend="reference", **CFG),
        "fast": lambda x: lif_multi_step(x, backend="fast", **CFG),
    }
    if node is not None:

        def sj(x):
            node.reset()
            return node(x)

        impls["spikingjelly"] = sj
    headline = {}
    for T in (4, 16):
        x = torch.randn(T, *shape_tail, device=dev).to(dtype).requires_grad_(True)
        g = torch.randn_like(x)
        fns, nrep = {"stream": stream}, {"stream": reps}
        for name, f in impls.items():

            def fwd(f=f, x=x):
                with torch.no_grad():
                    return f(x)

            def fwd_train(f=f, x=x):
                return f(x)

            def fwdbwd(f=f, x=x, g=g):
                x.grad = None
                f(x).backward(g)

            slow = name != "fast"
            for kind, fn in (("fwd", fwd), ("fwd_train", fwd_train), ("fwdbwd", fwdbwd)):
                fns[f"{name}:{kind}"] = fn
                nrep[f"{name}:{kind}"] = max(3, reps // 3) if slow else reps
        res = interleaved(fns, dev, nrep)
        bw = 3 * nbuf * esize / (res.pop("stream") * 1e-3)
        n = x.numel()
        # a fused fwd+bwd must at least read x, write S and H (fwd), read H and dS, write dX (bwd)
        bound_ms = 6 * esize * n / bw * 1e3
        print(
            f"T={T:2d}: streaming add {bw / 1e9:.1f} GB/s -> memory bound fwd+bwd ({6 * esize} B/elem) {bound_ms:.2f} ms"
        )
        for name in impls:
            print(
                f"      {name:<13} fwd (no grad) {res[name + ':fwd']:9.2f} ms | fwd (train) {res[name + ':fwd_train']:9.2f} ms"
                f" | fwd+bwd {res[name + ':fwdbwd']:9.2f} ms"
            )
        f_fb, f_f = res["fast:fwdbwd"], res["fast:fwd_train"]
        print(f"      fast fwd+bwd / memory bound = {f_fb / bound_ms:.2f}x")
        print(
            f"      fast vs ref: fwd {res['ref:fwd_train'] / f_f:.1f}x, fwd+bwd {res['ref:fwdbwd'] / f_fb:.1f}x faster"
        )
        if node is not None:
            headline[T] = res["spikingjelly:fwdbwd"] / f_fb
            print(
                f"      fast vs spikingjelly: fwd {res['spikingjelly:fwd_train'] / f_f:.1f}x, "
                f"fwd+bwd {headline[T]:.1f}x faster"
            )
        else:
            print("      spikingjelly not installed")
    return headline


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
    """Run FIRST_CALL in a fresh process. Python bytecode caching is switched on there (as after a pip install):
    with PYTHONDONTWRITEBYTECODE=1 every import recompiles numba's and torch's sources (seconds on this machine)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as tmp:
        if cold:
            env["NUMBA_CACHE_DIR"] = tmp
        out = subprocess.run(
            [sys.executable, "-c", FIRST_CALL], env=env, capture_output=True, text=True, check=True
        )
    imp, first, second = (float(v) for v in out.stdout.split())
    return (
        f"import torch+tenfold_core.spiking {imp:.2f} s; first fwd+bwd {first:.2f} s (numba import + kernel load), "
        f"second {second * 1e3:.1f} ms -> first-call overhead {first - second:.2f} s"
    )


def keep_freed_memory() -> bool:
    """glibc: serve large tensors from the heap instead of a fresh mmap per allocation.

    By default glibc mmaps every block above its dynamic threshold (at most 32 MiB), so each [16, 32, 16384] fp32
    tensor (32 MiB) is a fresh mapping whose pages are faulted in and zeroed on first touch; on this machine that
    cost more than the LIF kernel itself. It applies to every implementation alike; ``--system-malloc`` keeps the
    default. Returns whether the setting was applied."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
    except Exception:
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-first-call", action="store_true")
    ap.add_argument(
        "--tuned-malloc",
        action="store_true",
        help="also measure with mallopt (no mmap of big tensors), labelled",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, CPU threads {args.threads}, cores {os.cpu_count()}, load average {load:.1f}"
    )
    if not args.no_first_call:
        print(f"first call (fresh process, warm numba cache): {first_call(cold=False)}")
        print(f"first call (fresh process, empty numba cache): {first_call(cold=True)}")
    headline = bench_device(torch.device("cpu"), (32, 16384), torch.float32, args.reps)
    loaded = load > (os.cpu_count() or 1) * 0.5
    tag = f" -- MEASURED UNDER LOAD (load average {load:.1f}): not a headline number" if loaded else ""
    if headline:
        print(
            f"\nHEADLINE (plain process, glibc default allocator, {args.threads} thread(s)): fused fwd+bwd vs "
            f"spikingjelly {', '.join(f'T={t}: {r:.1f}x' for t, r in headline.items())}{tag}"
        )
    if args.tuned_malloc and keep_freed_memory():
        print("\n-- tuned allocator (mallopt: no mmap below 1 GiB), NOT the headline --")
        tuned = bench_device(torch.device("cpu"), (32, 16384), torch.float32, args.reps)
        print(f"tuned allocator: {', '.join(f'T={t}: {r:.1f}x' for t, r in tuned.items())}{tag}")
    if torch.cuda.is_available():
        print(f"card: {torch.cuda.get_device_name()}")
        bench_device(torch.device("cuda"), (64, 65536), torch.float16, args.reps)


if __name__ == "__main__":
    main()
