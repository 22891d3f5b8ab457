"""Spectrum benchmark: render time and peak RSS for 1-minute and 1-hour stereo calls, the spectrum
layer's unzipped size and its cold import time.

Each render runs in a fresh interpreter pinned to one core; the reference in the same run is a
plain decode of the same WAV with soundfile (the least any renderer must do), so the ratio says
what the spectrogram costs on top of reading the file. Targets (issue 6): peak RSS flat across
lengths, a 1-hour recording in under 10 s on one core. Lambda's layer limit is 250 MB unzipped.

BENCH_SPECTRUM_4H=1 adds a 4-hour call (460 MB of WAV written to a temp dir).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO / "layers" / "spectrum-deps" / "requirements.txt"
LAYER_LIMIT_MB = 250
TARGET_SECONDS_1H = 10.0
FLAT_MB = 10.0
LAMBDA_PLATFORM = [
    "--platform",
    "manylinux2014_aarch64",
    "--only-binary=:all:",
    "--python-version",
    "3.13",
]
# Lambda's python3.13 runtime is Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels run there,
# and soundfile ships libsndfile only in its manylinux_2_28 wheels.
LAMBDA_PLATFORM_2_28 = ["--platform", "manylinux_2_28_aarch64", *LAMBDA_PLATFORM]

RENDER = """
import os, sys, time, json
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
mode, path = sys.argv[1], sys.argv[2]
import numpy, soundfile
from callrec import spectrum

def status_mb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

after_import = status_mb("VmRSS")
started, cpu = time.perf_counter(), time.process_time()
if mode == "render":
    out = spectrum.render(path, contact_id="bench").png
else:  # decode only, in blocks of the same size
    with soundfile.SoundFile(path) as wav:
        for block in wav.blocks(blocksize=262144, dtype="float32", always_2d=True):
            pass
print(json.dumps({
    "seconds": time.perf_counter() - started,
    "cpu_seconds": time.process_time() - cpu,
    "peak_rss_mb": status_mb("VmHWM"),
    "rss_after_import_mb": after_import,
}))
"""

IMPORT = """
import sys, time
sys.path.insert(0, sys.argv[1]) if len(sys.argv) > 1 else None
started = time.perf_counter()
import numpy, soundfile
from PIL import Image, ImageDraw, ImageFont
print(time.perf_counter() - started)
"""

IMPORT_CALLREC = """
import time
started = time.perf_counter()
import callrec.spectrum
print(time.perf_counter() - started)
"""


def _wavs() -> ModuleType:
    # The synthetic call of the tests; loaded by path (a `tests` package in site-packages
    # shadows the repository's namespace package outside pytest).
    path = REPO / "tests" / "unit" / "spectrum" / "wavs.py"
    spec = importlib.util.spec_from_file_location("spectrum_bench_wavs", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(mode: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", RENDER, mode, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def _best_of(code: str, runs: int, *args: str) -> float:
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-S", "-c", code, *args] if args else [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        times.append(float(out.stdout.strip()))
    return min(times)


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def _pip_target(target: Path, platform: list[str]) -> tuple[bool, str]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--target",
            str(target),
            *platform,
            "-r",
            str(REQUIREMENTS),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    errors = [line for line in out.stderr.splitlines() if line.startswith("ERROR")]
    return out.returncode == 0, (errors[0] if errors else "")


def bench_renders(workdir: Path) -> int:
    wavs = _wavs()
    lengths = [("1 minute", 60.0), ("1 hour", 3600.0)]
    if os.environ.get("BENCH_SPECTRUM_4H"):
        lengths.append(("4 hours", 14400.0))
    print(
        f"{'call':<10} {'WAV MB':>8} {'render s':>9} {'cpu s':>7} {'decode s':>9} "
        f"{'ratio':>6} {'peak RSS MB':>12} {'after import':>13}"
    )
    status = 0
    peaks = []
    for name, seconds in lengths:
        path = workdir / f"call-{int(seconds)}.wav"
        wavs.write_call(path, seconds, channels=2)
        render, decode = _run("render", path), _run("decode", path)
        peaks.append(render["peak_rss_mb"])
        print(
            f"{name:<10} {path.stat().st_size / 1e6:>8.1f} {render['seconds']:>9.2f} "
            f"{render['cpu_seconds']:>7.2f} {decode['seconds']:>9.2f} "
            f"{render['seconds'] / decode['seconds']:>5.1f}x {render['peak_rss_mb']:>12.1f} "
            f"{render['rss_after_import_mb']:>13.1f}"
        )
        if seconds == 3600.0 and render["seconds"] > TARGET_SECONDS_1H:
            print(f"  MISSED: 1-hour render over {TARGET_SECONDS_1H} s")
            status = 1
        path.unlink()
    # The allocator settles within the first few blocks (a few MB above the first minute's
    # peak); holding the 1-hour recording would add 115 MB, so 10 MB is a clear line.
    spread = max(peaks) - min(peaks)
    print(f"peak RSS spread across lengths: {spread:.1f} MB (flat if under {FLAT_MB} MB)")
    if spread > FLAT_MB:
        print("  MISSED: peak RSS grows with the recording's length")
        status = 1
    return status


def bench_layer(workdir: Path) -> int:
    print(f"layer: pip install -r {REQUIREMENTS.relative_to(REPO)}")
    status = 0
    host: Path | None = None
    for label, platform in (
        ("manylinux2014_aarch64 only", LAMBDA_PLATFORM),
        ("Lambda arm64 (2_28 + 2014)", LAMBDA_PLATFORM_2_28),
        ("this machine (for import time)", ["--only-binary=:all:"]),
    ):
        target = workdir / f"layer-{len(label)}"
        ok, error = _pip_target(target, platform)
        if not ok:
            print(f"  {label:<31} not installable: {error[:110]}")
            continue
        libsndfile = any((target / "_soundfile_data").glob("libsndfile*"))
        size = _dir_mb(target)
        note = "" if libsndfile else "  (NO libsndfile inside: soundfile would not import)"
        print(f"  {label:<31} {size:7.1f} MB unzipped (limit {LAYER_LIMIT_MB}){note}")
        if size > LAYER_LIMIT_MB:
            status = 1
        if platform[0] != "--platform":
            host = target
    layer_import = _best_of(IMPORT, 5, str(host)) if host else _best_of(IMPORT, 5)
    callrec_import = _best_of(IMPORT_CALLREC, 5)
    print(f"cold import numpy+soundfile+Pillow (best of 5): {layer_import * 1000:.0f} ms")
    print(f"cold import callrec.spectrum (dev venv, best of 5): {callrec_import * 1000:.0f} ms")
    return status


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-spectrum-"))
    try:
        started = time.perf_counter()
        status = bench_renders(workdir) | bench_layer(workdir)
        print(f"(benchmark took {time.perf_counter() - started:.0f} s)")
        return status
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
