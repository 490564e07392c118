"""Time every kernel on a CUDA device against the CPU, at N=50,000, D=2,048, C=100 and C=397.

Usage (well under 5 minutes on a current GPU)::

    PYTHONPATH=python python benchmarks/gpu.py [--output gpu_results.md]

For each kernel of the contract it prints the wall time of

- the CPU baseline: the compiled core ``pedrank._core`` when it is built for this interpreter, else the same
  array kernels on NumPy (``ArrayKernels(NumpyBackend())``, labelled so) -- one run, features on the host;
- torch on CUDA in float64 (the default) and with ``dtype="float32"``: median of ``--repeat`` runs after a
  warm-up, features already on the device as float32 (how extracted features usually arrive);

and the relative difference of the CUDA float64 result from the CPU one. ``--device cpu --n 2000 --d 64``
gives a quick smoke run on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

_PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "python"
sys.path.insert(0, str(_PACKAGE_ROOT))
try:
    import pedrank  # noqa: F401
except ImportError as error:
    # The array kernels need nothing from the rest of the package (e.g. a compiled core built for another
    # interpreter): load them from a bare package so the timings still run.
    import types

    print(f"note: 'import pedrank' failed ({error}); loading the array kernels alone", file=sys.stderr)
    bare = types.ModuleType("pedrank")
    bare.__path__ = [str(_PACKAGE_ROOT / "pedrank")]
    sys.modules["pedrank"] = bare

from pedrank.backend import NumpyBackend, TorchBackend

from pedrank._engine.array_kernels import ArrayKernels

KERNELS = ("class_means", "covariance", "logme", "sfda_fit", "sfda_score", "gbc", "ped_step")


def make_problem(n_samples, n_features, n_classes, seed, separation=0.3):
    """Overlapping Gaussian class clusters (so PED has pairs to push apart); every class present."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, size=n_samples)
    labels[:n_classes] = np.arange(n_classes)
    centres = rng.normal(scale=separation, size=(n_classes, n_features)).astype(np.float32)
    features = centres[labels] + rng.standard_normal(size=(n_samples, n_features), dtype=np.float32)
    return features, labels.astype(np.int64)


def calls(kernels, features, labels, n_classes, center, scale):
    """One zero-argument callable per kernel, returning something comparable across backends."""
    return {
        "class_means": lambda: kernels.class_means(features, labels, n_classes)[1],
        "covariance": lambda: kernels.covariance(features)[1],
        "logme": lambda: float(np.mean(kernels.logme(features, labels, n_classes, None, False)[0])),
        "sfda_fit": lambda: kernels.sfda_fit(features, labels, n_classes, float("nan"))[0],
        "sfda_score": lambda: kernels.sfda_score(features, labels, n_classes, float("nan"))[0],
        "gbc": lambda: kernels.gbc(features, labels, n_classes, 64, False, False),
        "ped_step": lambda: kernels.ped_step(features, labels, n_classes, center, scale, 0.6, 1.0, 0.1)[1],
    }


def timed(function, synchronize, repeat, warmup):
    for _ in range(warmup):
        function()
    synchronize()
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def relative_difference(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def cpu_kernels(choice):
    if choice in ("auto", "core"):
        try:
            from pedrank import _core

            if all(hasattr(_core, name) for name in KERNELS if name != "mean_std"):
                return _core, "pedrank._core"
        except ImportError:
            pass
        if choice == "core":
            raise SystemExit("--cpu core: pedrank._core is not built with every kernel for this interpreter")
    return ArrayKernels(NumpyBackend()), "numpy array kernels"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--d", type=int, default=2_048)
    parser.add_argument("--classes", type=int, nargs="+", default=[100, 397])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--cpu", choices=["auto", "core", "numpy", "none"], default="auto",
                        help="CPU baseline: the compiled core, the NumPy array kernels, or none")
    parser.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=KERNELS)
    parser.add_argument("--output", help="also write the table (markdown) here")
    args = parser.parse_args(argv)

    import torch

    device = torch.device(args.device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU torch ({torch.get_num_threads()} threads)"
    baseline, baseline_name = (None, "none") if args.cpu == "none" else cpu_kernels(args.cpu)
    backend = TorchBackend(device)
    gpu64, gpu32 = ArrayKernels(backend, "float64"), ArrayKernels(backend, "float32")

    lines = [
        (
            f"device: {name}; torch {torch.__version__}; CPU baseline: {baseline_name} "
            f"(numpy {np.__version__}); N={args.n}, D={args.d}; features float32 on the device; "
            f"GPU times are medians of {args.repeat} runs after a warm-up, CPU times one run."
        ),
        "",
        "| kernel | C | CPU (s) | torch f64 (s) | torch f32 (s) | speed-up f64 | rel. diff f64 vs CPU |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    print("\n".join(lines), flush=True)
    for n_classes in args.classes:
        host_features, labels = make_problem(args.n, args.d, n_classes, seed=n_classes)
        center = host_features.mean(axis=0, dtype=np.float64)
        scale = np.maximum(host_features.std(axis=0, dtype=np.float64), 1e-3)
        features = torch.as_tensor(host_features, device=device)
        start = time.perf_counter()
        host_copy = features.cpu().numpy()
        copy_seconds = time.perf_counter() - start
        del host_copy
        sync = backend.synchronize
        on_device64 = calls(gpu64, features, labels, n_classes, center, scale)
        on_device32 = calls(gpu32, features, labels, n_classes, center, scale)
        on_host = calls(baseline, host_features, labels, n_classes, center, scale) if baseline else {}
        for kernel in args.kernels:
            t64, r64 = timed(on_device64[kernel], sync, args.repeat, warmup=1)
            t32, _ = timed(on_device32[kernel], sync, args.repeat, warmup=1)
            if kernel in on_host:
                tcpu, rcpu = timed(on_host[kernel], lambda: None, 1, warmup=0)
                cpu_text, speed, diff = f"{tcpu:.3f}", f"{tcpu / t64:.1f}x", f"{relative_difference(r64, rcpu):.1e}"
            else:
                cpu_text = speed = diff = "-"
            row = f"| {kernel} | {n_classes} | {cpu_text} | {t64:.4f} | {t32:.4f} | {speed} | {diff} |"
            lines.append(row)
            print(row, flush=True)
        moved = gpu64.ped_step(features, labels, n_classes, center, scale, 0.6, 1.0, 0.1)[0]
        note = (f"C={n_classes}: PED's moved features stay on {moved.device} as {moved.dtype}; "
                f"copying the features to the host alone takes {copy_seconds:.3f} s.")
        lines.append("")
        lines.append(note)
        lines.append("")
        print(note, flush=True)
        del features, moved
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**30
        lines.append(f"peak GPU memory allocated: {peak:.1f} GiB")
        print(lines[-1])
    if args.output:
        Path(args.output).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
