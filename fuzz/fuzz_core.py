"""Fuzz the bindings of ``pedrank._core`` over their whole argument space.

Every compiled kernel is called directly, past the Python validation, with generated arguments: wrong
dtypes and shapes, empty and non-contiguous arrays, zero strides, NaN/inf values, labels out
of range or negative, n_classes 0 or huge, NaN scalars, None, strings. The only acceptable
outcomes are a return value or one of ``ALLOWED`` (ValueError, TypeError, MemoryError,
IndexError, OverflowError from argument conversion). A segfault, an abort or an uncaught C++
exception (pybind11 turns those into RuntimeError) is a finding.

The kernels and the kinds of their arguments come from the registry (``pedrank.scores.registry.kernel_arguments``:
the shared kernels of ``pedrank._engine.kernels`` and those each score declares), so a new kernel is fuzzed as soon
as its score registers it. Shapes are tiny (N < 9, D < 5), except for a slice of ``LARGE_SHARE`` of the calls
at N 520-4,200 and D 512-540, which reaches the BLAS-only paths (dsyrk, SFDA's blocked Cholesky, dsyevd);
those cases are rebuilt by ``generate`` in their reproducer instead of being written out.

The calls run in worker subprocesses (so a crash is seen, not suffered) under an address-space
limit (so "n_classes = 2**40" fails with MemoryError instead of waking the OOM killer). When a
worker dies, the chunk is replayed call by call to name the exact case, which is printed as a
standalone reproducer; the run then goes on after it.

Usage::

    PYTHONPATH=python python fuzz/fuzz_core.py                  # 100,000 calls, seed 0
    PYTHONPATH=python python fuzz/fuzz_core.py --calls 1000000 --seed 7
    PYTHONPATH=python python fuzz/fuzz_core.py --replay 7:12345  # print and run one case

Exit status 0: no finding; 1: crashes or unexpected exceptions (listed).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time

import numpy as np

from pedrank.scores.registry import kernel_arguments

#: Every compiled kernel, with the kinds of its arguments (see pedrank.scores.registry.ARGUMENT_KINDS).
KERNEL_ARGUMENTS = kernel_arguments()
KERNELS = tuple(KERNEL_ARGUMENTS)
#: Share of the calls made at large shapes (the BLAS-only paths).
LARGE_SHARE = 0.002
ALLOWED = (ValueError, TypeError, MemoryError, IndexError, OverflowError)
ADDRESS_SPACE_LIMIT = 4 * 2**30
CHUNK = 20_000


# ----------------------------------------------------------------------------- generation
# Each case is a pure function of (seed, index): a crash found once is found again.


class Case:
    """One generated call: the kernel name, its arguments, and code that rebuilds them."""

    def __init__(self, kernel, args, source, large=False):
        self.kernel = kernel
        self.args = args
        self.source = source
        self.large = large


class Generator:
    def __init__(self, seed, index):
        self.rng = np.random.default_rng([seed, index])
        self.lines = []  # Python source that rebuilds the arguments
        self.record = True  # False for large cases: their reproducer calls generate() instead
        self.tame = False  # True: mostly valid arguments (see choice)

    def emit(self, line):
        if self.record:
            self.lines.append(line)

    def chance(self, p):
        return self.rng.random() < (p * 0.1 if self.tame else p)

    def choice(self, options):
        # Tame cases (most large ones) mostly take the first option, which every generator lists as the valid
        # one, so that the call gets past the checks into the kernel.
        if self.tame and self.rng.random() < 0.9:
            return options[0]
        return options[int(self.rng.integers(len(options)))]

    # --- scalars -----------------------------------------------------------------
    def integer_like(self, typical):
        options = [typical, typical, typical, 0, 1, -1, typical + 3, 2**31, 2**40, 2**62, 2**63, -(2**63),
                   float(typical), float("nan"), None, "2", np.int32(typical), np.int64(typical), True]
        return self.choice(options)

    def real_like(self, typical):
        options = [typical, typical, typical, 0.0, -1.0, 1.0, 2.0, float("nan"), float("inf"), -float("inf"),
                   1e308, 1e-308, 5e-324, None, "0.5", np.float32(typical), 3]
        return self.choice(options)

    def flag(self):
        return self.choice([False, True, False, True, 0, 1, None, "yes", 2, np.bool_(True)])

    # --- arrays ------------------------------------------------------------------
    def _values(self, shape, dtype):
        kind = self.choice(["normal", "normal", "normal", "zeros", "const", "huge", "tiny", "ints"])
        if kind == "normal":
            values = self.rng.normal(size=shape)
        elif kind == "zeros":
            values = np.zeros(shape)
        elif kind == "const":
            values = np.full(shape, 3.5)
        elif kind == "huge":
            values = self.rng.normal(size=shape) * 1e200
        elif kind == "tiny":
            values = self.rng.normal(size=shape) * 1e-200
        else:
            values = self.rng.integers(-3, 4, size=shape).astype(float)
        with np.errstate(over="ignore", invalid="ignore"):
            values = np.asarray(values).astype(dtype)
        if values.size and dtype in (np.float16, np.float32, np.float64) and self.chance(0.1):
            flat = values.reshape(-1)
            flat[int(self.rng.integers(flat.size))] = self.choice([np.nan, np.inf, -np.inf])
        return values

    def _layout(self, array):
        if array.ndim != 2 or array.size == 0:
            return array, ""
        layout = self.choice(["c", "c", "c", "f", "cols", "rows", "neg", "zero-stride", "transposed", "readonly"])
        if layout == "f":
            return np.asfortranarray(array), "np.asfortranarray({})"
        if layout == "cols":
            return np.repeat(array, 2, axis=1)[:, ::2], "np.repeat({}, 2, axis=1)[:, ::2]"
        if layout == "rows":
            return np.repeat(array, 2, axis=0)[::2], "np.repeat({}, 2, axis=0)[::2]"
        if layout == "neg":
            return array[::-1, ::-1], "{}[::-1, ::-1]"
        if layout == "zero-stride":
            row = array[:1]
            return np.broadcast_to(row, array.shape), "np.broadcast_to({}[:1], %r)" % (array.shape,)
        if layout == "transposed":
            return array.T.copy().T, "{}.T.copy().T"
        readonly = array.copy()
        readonly.setflags(write=False)
        return readonly, "{}  # read-only"

    def features(self, n, d):
        dtype = self.choice([np.float64, np.float64, np.float64, np.float32, np.float32, np.float16, np.int64,
                             np.int32, np.bool_, np.complex128, np.uint8])
        shape = self.choice([(n, d), (n, d), (n, d), (n, d), (n,), (n, d, 2), (), (0, d), (n, 0), (0, 0)])
        if self.chance(0.02):
            self.emit("X = None")
            return None
        if self.chance(0.02):
            self.emit("X = [[1.0, 2.0], [3.0]]")
            return [[1.0, 2.0], [3.0]]
        values = self._values(shape, dtype)
        if self.chance(0.03):
            values = np.asarray(values).astype(object)
        values, wrap = self._layout(values)
        if self.record:
            self.emit(f"X = np.array({values.tolist()!r}, dtype=np.{np.dtype(values.dtype).name})")
        if wrap:
            self.emit("X = " + wrap.format("X"))
        return values

    def labels(self, n, n_classes):
        c = max(int(n_classes), 1)
        kind = self.choice(["valid", "valid", "valid", "valid", "out", "negative", "short", "long", "2d",
                            "float", "int32", "uint64", "none", "empty", "strided", "huge"])
        if kind == "none":
            self.emit("labels = None")
            return None
        size = {"short": max(n - 1, 0), "long": n + 1, "empty": 0}.get(kind, n)
        values = self.rng.integers(0, c, size=size).astype(np.int64)
        if size >= c and kind == "valid":
            values[:c] = np.arange(c)
        if kind == "out" and size:
            values[int(self.rng.integers(size))] = c + int(self.rng.integers(0, 3))
        if kind == "negative" and size:
            values[int(self.rng.integers(size))] = -int(self.rng.integers(1, 3))
        if kind == "huge" and size:
            values[int(self.rng.integers(size))] = 2**62
        expression = f"np.array({values.tolist()!r}, dtype=np.int64)"
        if kind == "2d":
            values = values.reshape(-1, 1)
            expression += ".reshape(-1, 1)"
        elif kind == "float":
            values = values.astype(np.float64)
            expression += ".astype(np.float64)"
        elif kind == "int32":
            values = values.astype(np.int32)
            expression += ".astype(np.int32)"
        elif kind == "uint64":
            values = values.astype(np.uint64)
            expression += ".astype(np.uint64)"
        elif kind == "strided":
            values = np.repeat(values, 2)[::2]
            expression = f"np.repeat({expression}, 2)[::2]"
        self.emit(f"labels = {expression}")
        return values

    def vector(self, name, d, typical):
        kind = self.choice(["valid", "valid", "valid", "short", "nan", "zeros", "negative", "2d", "float32",
                            "none", "strided"])
        if kind == "none":
            self.emit(f"{name} = None")
            return None
        size = max(d - 1, 0) if kind == "short" else d
        values = np.full(size, typical) + (self.rng.random(size) if kind != "zeros" else 0.0)
        if kind == "zeros":
            values = np.zeros(size)
        if kind == "negative":
            values = -values
        if kind == "nan" and size:
            values[0] = np.nan
        expression = f"np.array({values.tolist()!r})"
        if kind == "2d":
            values = values.reshape(1, -1)
            expression += ".reshape(1, -1)"
        elif kind == "float32":
            values = values.astype(np.float32)
            expression += ".astype(np.float32)"
        elif kind == "strided":
            values = np.repeat(values, 2)[::2]
            expression = f"np.repeat({expression}, 2)[::2]"
        self.emit(f"{name} = {expression}")
        return values

    def matrix(self, name, shape):
        """A float matrix (e.g. PED's displacement) in any dtype, shape and layout, or None."""
        if self.chance(0.03):
            self.emit(f"{name} = None")
            return None
        dtype = self.choice([np.float64, np.float64, np.float64, np.float32, np.int64, np.complex128])
        if self.chance(0.15):
            shape = self.choice([(shape[0] + 1, shape[1]), (shape[0], shape[1] + 1), (shape[0],), ()])
        values, wrap = self._layout(self._values(shape, dtype))
        expression = f"np.array({values.tolist()!r}, dtype=np.{np.dtype(values.dtype).name})"
        self.emit(f"{name} = " + (wrap.format(expression) if wrap else expression))
        return values

    def output(self, X, n, d):
        """PED's ``out`` argument: X itself, a fresh array, or a wrong one."""
        kind = self.choice(["fresh", "fresh", "fresh", "x", "float32", "float16", "ints", "short", "readonly",
                            "none", "fortran", "list"])
        if kind == "x":
            self.emit("out = X")
            return X
        if kind == "none":
            self.emit("out = None")
            return None
        if kind == "list":
            self.emit(f"out = [[0.0] * {d}] * {n}")
            return [[0.0] * d] * n
        shape = (max(n - 1, 0), d) if kind == "short" else (n, d)
        dtype = {"float32": "float32", "float16": "float16", "ints": "int64"}.get(kind, "float64")
        order = "F" if kind == "fortran" else "C"
        out = np.zeros(shape, dtype=dtype, order=order)
        self.emit(f"out = np.zeros({shape!r}, dtype=np.{dtype}, order={order!r})")
        if kind == "readonly":
            out.setflags(write=False)
            self.emit("out.setflags(write=False)")
        return out

    def targets(self, n):
        kind = self.choice(["none", "none", "valid", "valid", "1d", "short", "nan", "float32", "k0", "fortran",
                            "strided"])
        if kind == "none":
            self.emit("targets = None")
            return None
        k = 0 if kind == "k0" else int(self.rng.integers(1, 4))
        rows = max(n - 1, 0) if kind == "short" else n
        values = self.rng.normal(size=(rows, k))
        if kind == "nan" and values.size:
            values.flat[0] = np.nan
        expression = f"np.array({values.tolist()!r}).reshape({rows}, {k})"
        if kind == "1d":
            values = values[:, 0] if k else values.reshape(-1)
            expression += "[:, 0]"
        elif kind == "float32":
            values = values.astype(np.float32)
            expression += ".astype(np.float32)"
        elif kind == "fortran":
            values = np.asfortranarray(values)
            expression = f"np.asfortranarray({expression})"
        elif kind == "strided":
            values = np.repeat(values, 2, axis=0)[::2]
            expression = f"np.repeat({expression}, 2, axis=0)[::2]"
        self.emit(f"targets = {expression}")
        return values

    def scalar(self, name, value):
        self.emit(f"{name} = {value!r}")
        return value


def generate(seed, index):
    """The case number ``index`` of the run ``seed``."""
    g = Generator(seed, index)
    kernel = KERNELS[int(g.rng.integers(len(KERNELS)))]
    large = g.chance(LARGE_SHARE)
    if large:
        g.record = False
        g.tame = g.rng.random() < 0.8
        # D >= 512 reaches SFDA's blocked Cholesky and dsyevd; N D^2 >= 1e9 (N >= 3,800) reaches dsyrk.
        n = int(g.rng.integers(3800, 4200)) if g.chance(0.2) else int(g.rng.integers(520, 1500))
        d = int(g.rng.integers(512, 541))
    else:
        n, d = int(g.rng.integers(0, 9)), int(g.rng.integers(0, 5))
    typical_classes = int(g.rng.integers(1, 4))
    X = n_classes = None
    label_classes = typical_classes
    args = []
    for spec in KERNEL_ARGUMENTS[kernel]:
        kind = spec[0]
        if kind == "X":
            X = g.features(n, d)
            args.append(X)
        elif kind == "n_classes":
            n_classes = g.scalar("n_classes", g.integer_like(typical_classes))
            try:
                label_classes = int(n_classes) if abs(float(n_classes)) < 64 else typical_classes
            except (TypeError, ValueError, OverflowError):
                label_classes = typical_classes
            args.append(n_classes)
        elif kind == "labels":
            args.append(None)  # drawn once n_classes is known (it may come later in the list)
        elif kind == "targets":
            args.append(g.targets(n))
        elif kind == "flag":
            args.append(g.scalar(spec[1], g.flag()))
        elif kind == "real":
            args.append(g.scalar(spec[1], g.real_like(spec[2])))
        elif kind == "integer":
            args.append(g.scalar(spec[1], g.integer_like(spec[2] if not large else int(g.rng.integers(1, 65)))))
        elif kind == "vector":
            args.append(g.vector(spec[1], d, spec[2]))
        elif kind == "class_vector":
            args.append(g.vector(spec[1], max(label_classes, 0), spec[2]))
        elif kind == "class_matrix":
            args.append(g.matrix(spec[1], (max(label_classes, 0), d)))
        elif kind == "out":
            args.append(g.output(X, n, d))
        else:  # pragma: no cover - the registry refuses unknown kinds
            raise AssertionError(f"unknown argument kind {kind!r}")
    for position, spec in enumerate(KERNEL_ARGUMENTS[kernel]):
        if spec[0] == "labels":
            args[position] = g.labels(n, label_classes)
    source = g.lines if not large else [f"from fuzz_core import generate  # run from fuzz/\n"
                                        f"args = generate({seed}, {index}).args  # N={n}, D={d}"]
    return Case(kernel, tuple(args), source, large=large)


#: Each kernel's argument names, for the reproducers.
ARGUMENT_NAMES = {
    kernel: ", ".join(spec[1] if len(spec) > 1 else spec[0] for spec in specs)
    for kernel, specs in KERNEL_ARGUMENTS.items()
}


def reproducer(case, module):
    """Standalone Python source that makes the call again."""
    body = "\n".join(case.source)
    return (
        f"import numpy as np\nimport {module} as core\nnan, inf = float('nan'), float('inf')\n{body}\n"
        f"core.{case.kernel}({'*args' if case.large else ARGUMENT_NAMES[case.kernel]})\n"
    )


# ----------------------------------------------------------------------------- worker


def _limit_address_space():
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
    except (ImportError, ValueError, OSError):
        pass


def run_worker(module_name, seed, start, count, trace):
    """Make calls start..start+count-1; print one JSON line of outcomes at the end."""
    core = importlib.import_module(module_name)
    outcomes = {"returned": 0, "allowed": {}, "unexpected": []}
    for index in range(start, start + count):
        case = generate(seed, index)
        if trace:
            sys.stderr.write(f"CASE {index}\n")
            sys.stderr.flush()
        try:
            getattr(core, case.kernel)(*case.args)
        except ALLOWED as error:
            name = type(error).__name__
            outcomes["allowed"][name] = outcomes["allowed"].get(name, 0) + 1
        except Exception as error:  # noqa: BLE001 - every other exception is a finding
            outcomes["unexpected"].append([index, case.kernel, f"{type(error).__name__}: {error}"[:300]])
        else:
            outcomes["returned"] += 1
    print(json.dumps(outcomes))


# ----------------------------------------------------------------------------- driver


def _spawn(args, seed, start, count, trace=False):
    command = [sys.executable, os.path.abspath(__file__), "--worker", "--module", args.module, "--seed",
               str(seed), "--start", str(start), "--count", str(count)]
    if trace:
        command.append("--trace")
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    return subprocess.run(command, capture_output=True, text=True, env=env, preexec_fn=_limit_address_space)


def _describe_exit(returncode):
    if returncode < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def _locate_crash(args, seed, start, count):
    """Replay a crashed chunk with tracing: the last case announced is the one that crashed."""
    process = _spawn(args, seed, start, count, trace=True)
    announced = [line for line in process.stderr.splitlines() if line.startswith("CASE ")]
    if process.returncode == 0 or not announced:
        return None, process
    return int(announced[-1].split()[1]), process


def _run_range(args, start, stop):
    """Calls start..stop-1 in workers; after a crash, locate it and go on after it."""
    outcome = {"calls": 0, "returned": 0, "allowed": {}, "unexpected": [], "crashes": [], "failure": None}
    while start < stop and len(outcome["crashes"]) < args.max_crashes:
        process = _spawn(args, args.seed, start, stop - start)
        if process.returncode == 0:
            result = json.loads(process.stdout.strip().splitlines()[-1])
            outcome["returned"] += result["returned"]
            for name, number in result["allowed"].items():
                outcome["allowed"][name] = outcome["allowed"].get(name, 0) + number
            outcome["unexpected"].extend(result["unexpected"])
            outcome["calls"] += stop - start
            return outcome
        index, replayed = _locate_crash(args, args.seed, start, stop - start)
        if index is None:
            outcome["failure"] = (
                f"worker failed ({_describe_exit(process.returncode)}) and the replay did not crash:\n"
                f"{process.stderr[-2000:]}"
            )
            return outcome
        case = generate(args.seed, index)
        stderr = "\n".join(line for line in replayed.stderr.splitlines() if not line.startswith("CASE "))
        outcome["crashes"].append(
            (index, case.kernel, _describe_exit(replayed.returncode), stderr[-600:], reproducer(case, args.module))
        )
        outcome["calls"] += index + 1 - start
        start = index + 1
    return outcome


def drive(args):
    from concurrent.futures import ThreadPoolExecutor

    start_time = time.perf_counter()
    chunks = [(first, min(first + CHUNK, args.calls)) for first in range(0, args.calls, CHUNK)]
    calls, returned, allowed, unexpected, crashes, failures = 0, 0, {}, [], [], []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(_run_range, args, first, stop) for first, stop in chunks]
        for future in futures:
            outcome = future.result()
            calls += outcome["calls"]
            returned += outcome["returned"]
            for name, number in outcome["allowed"].items():
                allowed[name] = allowed.get(name, 0) + number
            unexpected.extend(outcome["unexpected"])
            crashes.extend(outcome["crashes"])
            if outcome["failure"]:
                failures.append(outcome["failure"])
            elapsed = time.perf_counter() - start_time
            print(f"  {calls:>9,d} calls  {calls / elapsed:,.0f} calls/s", file=sys.stderr)
    elapsed = time.perf_counter() - start_time
    print(f"{calls:,d} calls in {elapsed:.1f} s ({calls / elapsed:,.0f} calls/s, {args.jobs} worker(s)), "
          f"seed {args.seed}, module {args.module}")
    print(f"returned: {returned:,d}; allowed exceptions: {json.dumps(allowed)}")
    for index, kernel, error in unexpected[:20]:
        print(f"UNEXPECTED exception, case {args.seed}:{index} ({kernel}): {error}")
    if len(unexpected) > 20:
        print(f"... and {len(unexpected) - 20} more unexpected exceptions")
    for index, kernel, how, stderr, source in crashes:
        print(f"CRASH, case {args.seed}:{index} ({kernel}), {how}\n--- stderr tail ---\n{stderr}\n"
              f"--- reproducer (also: fuzz/fuzz_core.py --replay {args.seed}:{index}) ---\n{source}")
    for failure in failures:
        print(f"HARNESS FAILURE: {failure}")
    found = bool(unexpected or crashes or failures)
    print("FINDINGS" if found else "no crash, no unexpected exception")
    return 1 if found else 0


def replay(args):
    seed, index = (int(part) for part in args.replay.split(":"))
    case = generate(seed, index)
    source = reproducer(case, args.module)
    print(source)
    _limit_address_space()
    namespace = {}
    exec(compile(source, f"<case {seed}:{index}>", "exec"), namespace)  # noqa: S102 - our own generated code
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100_000, help="number of generated calls (default 100,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--module", default="pedrank._core", help="module exposing the kernel contract")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes at a time (default 2)")
    parser.add_argument("--max-crashes", type=int, default=5, help="per chunk: stop after this many crashes")
    parser.add_argument("--replay", metavar="SEED:INDEX", help="print and run one case, in this process")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(args.module, args.seed, args.start, args.count, args.trace)
        return 0
    if args.replay:
        return replay(args)
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())
