"""Benchmark: multi-step LIF forward and forward+backward, ours (reference, fused) vs spikingjelly, same process.

CPU: x = [T, 32, 16384] float32; CUDA (if present): x = [T, 64, 65536] float16. T in {4, 16}.
Also prints the memory bound (bytes a fused fwd+bwd must move / bandwidth of a streaming torch add measured in
this run) and the first-call overhead of the fused CPU kernel (fresh process; warm and cold numba cache).

Headline: a plain Python process at 1 thread, glibc's default allocator (what users get). ``--tuned-malloc``
shows the ``mallopt`` figure (no re-mmap of 32 MiB buffers) beside it, labelled; on a loaded machine (load average
above the core count) the numbers are not headline numbers, and the script says so.

A second table times the optional fused LayerNorm+LIF path (``layernorm_lif_multi_step``) against
``layer_norm`` followed by ``lif_multi_step`` (fused LIF kernel), fwd+bwd with gradients for x, weight and bias, on
x = [T, 32, 1024] float32, T in {4, 16}, at the same thread count.

Run: ``.venv/bin/python bench/lif.py`` (optional ``--reps N``, ``--threads N``, ``--no-first-call``,
``--tuned-malloc``, ``--no-fused-ln``, ``--fused-ln-only``).
"""

from __future__ import annotations

import argparse
import contextlib
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
    """Median wall time and median process CPU time (ms) of each ``fns[name]()``: ``{name: (wall, cpu)}``.

    Calls are interleaved round-robin so that load from other processes on a shared machine hits every candidate
    alike; CPU time (all threads of this process) is the steadier figure when the machine is loaded, because it
    leaves out the time this process waited for a core. ``reps[name]`` caps the repetitions of slow ones."""
    for f in fns.values():
        for _ in range(warmup):
            f()
    _sync(dev)
    times = {k: ([], [], []) for k in fns}
    for r in range(max(reps.values())):
        for k, f in fns.items():
            if r >= reps[k]:
                continue
            f0 = _minor_faults()
            t0, c0 = time.perf_counter(), time.process_time()
            f()
            _sync(dev)
            times[k][0].append((time.perf_counter() - t0) * 1e3)
            times[k][1].append((time.process_time() - c0) * 1e3)
            times[k][2].append(_minor_faults() - f0)
    return {
        k: (statistics.median(w), statistics.median(c), statistics.median(p))
        for k, (w, c, p) in times.items()
    }


def _minor_faults() -> int:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    except Exception:  # pragma: no cover - not on Linux/macOS
        return 0


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
    """Time every implementation at T = 4 and 16; returns ``{T: {name: (wall_ms, cpu_ms)}, ...}`` plus bounds."""
    from tenfold_core.spiking import _buffers

    esize = torch.tensor([], dtype=dtype).element_size()
    print(
        f"\n== {dev.type}: x = [T, {', '.join(map(str, shape_tail))}] {dtype}; torch threads {torch.get_num_threads()}"
    )
    node = sj_node(dev)
    nbuf = (128 << 20) // esize  # streaming add on 3 x 128 MiB buffers (2 reads + 1 write)
    a, b, c = (torch.rand(nbuf, device=dev).to(dtype) for _ in range(3))

    def stream():
        torch.add(a, b, out=c)

    def no_cache(x):  # the kernel's outputs from plain torch.empty (fresh, page-faulted memory); see fwdbwd
        return lif_multi_step(x, backend="fast", **CFG)

    impls = {"fast": lambda x: lif_multi_step(x, backend="fast", **CFG)}
    if dev.type == "cpu":
        impls["fast-nocache"] = no_cache
    if node is not None:

        def sj(x):
            node.reset()
            return node(x)

        impls["spikingjelly"] = sj
    impls["torch-ref"] = lambda x: lif_multi_step(x, backend="reference", **CFG)
    results = {}
    for T in (4, 16):
        x = torch.randn(T, *shape_tail, device=dev).to(dtype).requires_grad_(True)
        g = torch.randn_like(x)
        fns, nrep = {"stream": stream}, {"stream": reps}
        for name, f in impls.items():
            scope = _buffers.bypass if name == "fast-nocache" else contextlib.nullcontext

            def fwd(f=f, x=x, scope=scope):
                with torch.no_grad(), scope():
                    return f(x)

            def fwdbwd(f=f, x=x, g=g, scope=scope):
                x.grad = None
                with scope():
                    f(x).backward(g)

            slow = not name.startswith("fast")
            for kind, fn in (("fwd", fwd), ("fwdbwd", fwdbwd)):
                fns[f"{name}:{kind}"] = fn
                nrep[f"{name}:{kind}"] = max(3, reps // 4) if slow else reps
        res = interleaved(fns, dev, nrep)
        sw, sc, _ = res.pop("stream")
        n = x.numel()
        # fused fwd+bwd minimum traffic: fwd reads X, writes S; bwd reads X (H is recomputed), dS, writes dX
        bound = {kind: 5 * esize * n / (3 * nbuf * esize / t) for kind, t in (("wall", sw), ("cpu", sc))}
        print(
            f"T={T:2d}: streaming add {3 * nbuf * esize / sw / 1e6:.1f} GB/s wall ({3 * nbuf * esize / sc / 1e6:.1f}"
            f" GB/s per CPU-second) -> memory bound fwd+bwd ({5 * esize} B/elem) {bound['wall']:.2f} ms wall,"
            f" {bound['cpu']:.2f} ms CPU"
        )
        print(
            f"      {'':<13} {'fwd (no grad) wall/CPU ms':>26} {'fwd+bwd wall/CPU ms':>22} {'page faults/call':>17}"
        )
        for name in impls:
            (fw, fc, _), (bw, bc, bp) = res[name + ":fwd"], res[name + ":fwdbwd"]
            print(f"      {name:<13} {fw:12.2f} /{fc:9.2f}   {bw:11.2f} /{bc:9.2f} {bp:17.0f}")
        fb = res["fast:fwdbwd"]
        line = [
            f"fast fwd+bwd / memory bound: {fb[0] / bound['wall']:.2f}x wall, {fb[1] / bound['cpu']:.2f}x CPU"
        ]
        for other in [k for k in impls if k != "fast"]:
            o = res[other + ":fwdbwd"]
            line.append(f"{other}/fast {o[0] / fb[0]:.1f}x wall, {o[1] / fb[1]:.1f}x CPU")
        print("      " + "; ".join(line))
        results[T] = dict(res, bound=(bound["wall"], bound["cpu"]))
    return results


def bench_fused_ln(reps: int, D: int = 1024) -> dict:
    """Fused LayerNorm+LIF vs ``layer_norm`` + ``lif_multi_step`` (fast LIF), fwd+bwd, CPU float32; ``{T: res}``."""
    from tenfold_core.spiking import layernorm_lif_multi_step

    dev = torch.device("cpu")
    print(
        f"\n== fused LayerNorm+LIF: x = [T, 32, {D}] float32, weight/bias [{D}]; torch threads "
        f"{torch.get_num_threads()}"
    )
    print(
        f"      {'':<4} {'fused fwd+bwd wall/CPU ms':>26} {'unfused wall/CPU ms':>22} {'unfused/fused':>16}"
    )
    out = {}
    for T in (4, 16):
        x = torch.randn(T, 32, D, device=dev).requires_grad_(True)
        w = (torch.rand(D) + 0.5).requires_grad_(True)
        b = (torch.randn(D) * 0.3).requires_grad_(True)
        g = torch.randn_like(x)

        def fused(x=x, w=w, b=b, g=g):
            x.grad = w.grad = b.grad = None
            layernorm_lif_multi_step(x, w, b, backend="fast", **CFG).backward(g)

        def unfused(x=x, w=w, b=b, g=g):
            x.grad = w.grad = b.grad = None
            y = torch.nn.functional.layer_norm(x, (D,), w, b)
            lif_multi_step(y, backend="fast", **CFG).backward(g)

        res = interleaved({"fused": fused, "unfused": unfused}, dev, {"fused": reps, "unfused": reps})
        (fw, fc, _), (uw, uc, _) = res["fused"], res["unfused"]
        print(
            f"      T={T:<2} {fw:12.2f} /{fc:9.2f}   {uw:11.2f} /{uc:9.2f}   {uw / fw:5.2f}x/{uc / fc:.2f}x"
        )
        out[T] = res
    print("      (ratios > 1: the fused path is that many times faster; wall / CPU time)")
    return out


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
    ap.add_argument("--reps", type=int, default=13)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-first-call", action="store_true")
    ap.add_argument(
        "--cold-cache", action="store_true", help="also time a first call with an empty numba cache"
    )
    ap.add_argument(
        "--tuned-malloc",
        action="store_true",
        help="also measure with mallopt (no mmap of big tensors), labelled",
    )
    ap.add_argument("--no-fused-ln", action="store_true", help="skip the fused LayerNorm+LIF table")
    ap.add_argument("--fused-ln-only", action="store_true", help="only the fused LayerNorm+LIF table")
    args = ap.parse_args()
    t_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, CPU threads {args.threads}, cores {os.cpu_count()}, load average {load:.1f}"
    )
    if args.fused_ln_only:
        bench_fused_ln(args.reps)
        load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        if max(load, load_end) > (os.cpu_count() or 1) * 0.5:
            print(f"MEASURED UNDER LOAD (load average {load:.1f} -> {load_end:.1f})")
        print(f"\nbench wall time {time.perf_counter() - t_start:.0f} s")
        return
    if not args.no_first_call:
        print(f"first call (fresh process, warm numba cache): {first_call(cold=False)}")
        if args.cold_cache:
            print(f"first call (fresh process, empty numba cache): {first_call(cold=True)}")
    res = bench_device(torch.device("cpu"), (32, 16384), torch.float32, args.reps)
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    loaded = max(load, load_end) > (os.cpu_count() or 1) * 0.5
    tag = f"MEASURED UNDER LOAD (load average {load:.1f} -> {load_end:.1f})" if loaded else f"load {load:.1f}"
    print(f"\nHEADLINE: plain process, glibc default allocator, {args.threads} thread(s), fwd+bwd; {tag}")
    print(
        f"  {'T':>2}  {'fast ms':>14}  {'vs spikingjelly':>16}  {'vs torch-ref':>14}  {'/ memory bound':>15}"
    )
    for T, r in res.items():
        fb = r["fast:fwdbwd"]
        sj = r.get("spikingjelly:fwdbwd")
        ref = r["torch-ref:fwdbwd"]
        sj_txt = f"{sj[0] / fb[0]:.1f}x/{sj[1] / fb[1]:.1f}x" if sj else "n/a"
        print(
            f"  {T:>2}  {fb[0]:6.2f}/{fb[1]:6.2f}  {sj_txt:>16}  {ref[0] / fb[0]:5.1f}x/{ref[1] / fb[1]:5.1f}x"
            f"  {fb[0] / r['bound'][0]:5.2f}x/{fb[1] / r['bound'][1]:.2f}x"
        )
    print("  (each cell: wall / CPU time; ratios > 1 = fast is that many times faster or above the bound)")
    if not args.no_fused_ln:
        bench_fused_ln(args.reps)
    if args.tuned_malloc and keep_freed_memory():
        print("\n-- tuned allocator (mallopt: no mmap below 1 GiB), NOT the headline --")
        bench_device(torch.device("cpu"), (32, 16384), torch.float32, args.reps)
    if torch.cuda.is_available():
        print(f"card: {torch.cuda.get_device_name()}")
        bench_device(torch.device("cuda"), (64, 65536), torch.float16, args.reps)
    print(f"\nbench wall time {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
