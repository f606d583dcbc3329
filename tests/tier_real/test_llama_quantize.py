"""FALSIFY-EXPORT-015: llama.cpp's own quantizer writes the bytes our GGUF export writes.

The oracle nobody here wrote: ``llama-quantize --pure`` (llama.cpp's program; ``--pure`` gives
every 2-D tensor the one type asked, as ``apr export --quantize`` does) run on our F32 GGUF export
of a tiny llama must give, tensor by tensor, the same type and the same bytes as our own F16, Q8_0,
Q4_K and Q6_K exports of the same `.apr`: with the numpy kernel and, when numba is installed,
the compiled one. Rows that do not split into 256-value blocks take the same fallback in both.

Needs the program: ``$LLAMA_QUANTIZE`` or ``llama-quantize`` on ``PATH`` (docs/convert.md says how
to build it from the llama-cpp-python source in about 25 minutes); without it each test skips and
the falsifier is UNDETERMINED, tolerated (``requires: [llama-cpp]``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.convert.tiny_hf import build_hf_folder

TYPES = {"f16": "F16", "q8_0": "Q8_0", "q4_k": "Q4_K", "q6_k": "Q6_K"}
KERNELS = ["numpy", "numba"] if importlib.util.find_spec("numba") else ["numpy"]


def llama_quantize() -> str:
    program = os.environ.get("LLAMA_QUANTIZE") or shutil.which("llama-quantize")
    if not program or not os.access(program, os.X_OK):
        pytest.skip("llama.cpp's llama-quantize is not installed (set LLAMA_QUANTIZE or put it on PATH)")
    return program


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny llama whose rows mostly split into 256-value superblocks (hidden 512), with a
    feed-forward width (1408) whose down projection's rows do not: the K-quant fallback."""
    from apr.convert.hf_import import import_hf

    base = tmp_path_factory.mktemp("llama-quantize")
    hf = build_hf_folder(base / "hf", "llama", hidden=512, layers=2, heads=4, kv_heads=2, inter=1408)
    import_hf(hf, base / "m.apr")
    return base / "m.apr"


def _tensors(path: Path) -> dict[str, tuple[str, bytes]]:
    import gguf

    return {t.name: (t.tensor_type.name, t.data.tobytes()) for t in gguf.GGUFReader(path).tensors}


@pytest.mark.falsifies("FALSIFY-EXPORT-015")
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("quant", sorted(TYPES))
def test_falsify_export_015_llama_quantize_writes_our_bytes(model, tmp_path, monkeypatch, quant, kernel):
    from apr.convert.gguf_export import GgufQuant, export_gguf

    program = llama_quantize()
    monkeypatch.setenv("APR_QUANT_KERNEL", kernel)
    export_gguf(model, tmp_path / "f32.gguf", quantize=GgufQuant.F32)
    export_gguf(model, tmp_path / "ours.gguf", quantize=GgufQuant(quant))
    done = subprocess.run([program, "--pure", str(tmp_path / "f32.gguf"), str(tmp_path / "llama.gguf"), TYPES[quant], "2"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    ours, theirs = _tensors(tmp_path / "ours.gguf"), _tensors(tmp_path / "llama.gguf")
    assert sorted(ours) == sorted(theirs)
    types = {name: kind for name, (kind, _) in ours.items()}
    assert TYPES[quant] in types.values()  # the type asked is there, not only fallbacks
    different = [name for name in ours if ours[name] != theirs[name]]
    assert different == [], f"{len(different)} tensors differ from llama.cpp's, first {different[0]}: " \
                            f"ours {ours[different[0]][0]}, llama.cpp {theirs[different[0]][0]}"
