"""`sam build` (offline, no container) produces deployable arm64 artifacts of every function and layer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support import REPO

SAM = REPO / ".tools" / "bin" / "sam"
EM_AARCH64 = 0xB7


def elf_machine(path: Path) -> int | None:
    header = path.read_bytes()[:20]
    if header[:4] != b"\x7fELF":
        return None
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def test_sam_build_gives_arm64_layers_and_every_function(tmp_path: Path) -> None:
    assert SAM.exists(), f"{SAM} missing: run `make tools` (make test does)"
    build_dir = tmp_path / "build"
    # sam build looks for python3.13 on PATH: the interpreter this venv was made from.
    python_dir = Path(sys.base_prefix) / "bin"

    result = subprocess.run(
        [str(SAM), "build", "--build-dir", str(build_dir), "--cache-dir", str(tmp_path / "cache")],
        cwd=REPO,
        env={**os.environ, "PATH": f"{python_dir}:{os.environ['PATH']}", "SAM_CLI_TELEMETRY": "0"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    template = yaml.safe_load((build_dir / "template.yaml").read_text().replace("!", ""))
    resources = template["Resources"]
    for name in ("SendEventFunction", "RecorderFunction", "SpectrumFunction"):
        assert (build_dir / name / "app.py").exists(), name
    assert (build_dir / "CallrecLayer" / "python" / "callrec" / "__init__.py").exists()
    assert resources["RecorderFunction"]["Properties"]["RecursiveLoop"] == "Allow"
    libraries = [p for p in build_dir.rglob("*.so*") if p.is_file()]
    assert libraries, "expected compiled libraries (numpy, soundfile) in the layers"
    wrong = [str(p) for p in libraries if elf_machine(p) not in (None, EM_AARCH64)]
    assert wrong == [], f"non-aarch64 libraries in an arm64 build: {wrong[:5]}"
