"""FALSIFY-RELIABILITY-009: checksums travel (issue 14).

A flipped bit anywhere in an APR file's data section (tensor bytes or padding) or its footer makes
`apr export` (safetensors, GGUF) and `apr stamp -o` refuse with ``damaged-input`` and write nothing;
``--allow-damaged`` carries the bytes over and says so. The oracle for "damaged" is zlib's CRC-32 of
the bytes before the footer compared with the stored footer, computed here from the file itself.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.convert.tiny_hf import build_hf_folder

FOOTER = 4


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from apr.convert.hf_import import import_hf

    base = tmp_path_factory.mktemp("crc-assets")
    hf = build_hf_folder(base / "hf", "qwen2", hidden=32, layers=1, heads=2, kv_heads=1, inter=64)
    path = base / "model.apr"
    import_hf(hf, path)
    return path


def run_cli(argv: list[str]) -> tuple[int, dict, str]:
    from apr.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    text = out.getvalue()
    return code, (json.loads(text) if text.strip().startswith("{") else {}), err.getvalue()


def data_offset(raw: bytes) -> int:
    from apr.format.header import parse_header

    return parse_header(raw[:64]).data_offset


def footer_error(raw: bytes) -> tuple[int, int]:
    """(stored footer, zlib CRC-32 of everything before it): the independent oracle."""
    return int.from_bytes(raw[-FOOTER:], "little"), zlib.crc32(raw[:-FOOTER])


COMMANDS = {
    "export-safetensors": lambda src, out: ["export", src, "--format", "safetensors", "-o", out],
    "export-gguf": lambda src, out: ["export", src, "--format", "gguf", "-o", out],
    "stamp-o": lambda src, out: ["stamp", src, "--license", "MIT", "-o", out],
}


@pytest.mark.falsifies("FALSIFY-RELIABILITY-009")
@settings(max_examples=40)
@given(command=st.sampled_from(sorted(COMMANDS)), where=st.floats(0, 1, exclude_max=True),
       bit=st.integers(0, 7), in_footer=st.booleans())
def test_falsify_reliability_009_a_flipped_bit_is_refused_or_declared(model, command, where, bit, in_footer) -> None:
    raw = bytearray(model.read_bytes())
    start = len(raw) - FOOTER if in_footer else data_offset(raw)
    at = start + int(where * (len(raw) - start if in_footer else len(raw) - FOOTER - start))
    raw[at] ^= 1 << bit
    stored, computed = footer_error(bytes(raw))
    assert stored != computed  # the oracle sees the damage
    folder = Path(tempfile.mkdtemp(prefix="apr-crc-"))
    try:
        src = folder / "in.apr"
        src.write_bytes(bytes(raw))
        out = folder / "out"
        code, document, _err = run_cli([*COMMANDS[command](os.fspath(src), os.fspath(out)), "--json"])
        assert code == 5 and document["error"]["code"] == "damaged-input", document
        assert f"0x{stored:08x}" in document["error"]["message"] and f"0x{computed:08x}" in document["error"]["message"]
        assert sorted(os.listdir(folder)) == ["in.apr"]  # no output, no temporary
        code, document, _err = run_cli([*COMMANDS[command](os.fspath(src), os.fspath(out)), "--allow-damaged", "--json"])
        assert code == 0, document
        damaged = document["damaged"]
        assert (damaged["footer_stored"], damaged["footer_computed"]) == (f"0x{stored:08x}", f"0x{computed:08x}")
        assert damaged["tensors_carried_over"] > 0 and "carried over as read" in damaged["carried_over"]
        if command == "stamp-o":  # the stamped copy keeps the damage, by the same difference
            new_stored, new_computed = footer_error(out.read_bytes())
            assert new_stored ^ new_computed == stored ^ computed
        assert src.read_bytes() == bytes(raw)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.falsifies("FALSIFY-RELIABILITY-009")
def test_falsify_reliability_009_the_issue_reproducer(model, tmp_path) -> None:
    """A flipped tensor bit failed `apr validate`, yet `export` and `stamp -o` carried it on with exit 0."""
    raw = bytearray(model.read_bytes())
    raw[len(raw) - 5000] ^= 0x01
    src = tmp_path / "flip.apr"
    src.write_bytes(bytes(raw))
    assert run_cli(["validate", os.fspath(src)])[0] == 5
    for argv in (["export", os.fspath(src), "-o", os.fspath(tmp_path / "hf")],
                 ["export", os.fspath(src), "--format", "gguf", "-o", os.fspath(tmp_path / "m.gguf")],
                 ["stamp", os.fspath(src), "--license", "MIT", "-o", os.fspath(tmp_path / "s.apr")]):
        code, _doc, err = run_cli(argv)
        assert code == 5 and "the input is damaged" in err and "--allow-damaged" in err, err
    assert sorted(os.listdir(tmp_path)) == ["flip.apr"]
    code, _doc, err = run_cli(["export", os.fspath(src), "--format", "gguf", "-o", os.fspath(tmp_path / "m.gguf"),
                               "--allow-damaged"])
    assert code == 0 and "damaged input exported (--allow-damaged)" in err and "carried over as read" in err


@pytest.mark.falsifies("FALSIFY-RELIABILITY-009")
def test_falsify_reliability_009_intact_inputs_pass_and_report_nothing(model, tmp_path) -> None:
    for name, argv in COMMANDS.items():
        code, document, _err = run_cli([*argv(os.fspath(model), os.fspath(tmp_path / name)), "--json"])
        assert code == 0 and document["damaged"] is None, (name, document)


@st.composite
def tensor_sets(draw: st.DrawFn) -> dict[str, np.ndarray]:
    names = draw(st.lists(st.text("abcdefgh.", min_size=1, max_size=8), min_size=1, max_size=6, unique=True))
    return {name: np.arange(draw(st.integers(0, 300)), dtype=np.float32) * draw(st.floats(-2, 2, width=32))
            for name in names}


@pytest.mark.falsifies("FALSIFY-RELIABILITY-009")
@settings(max_examples=60)
@given(tensors=tensor_sets(), data=st.data())
def test_falsify_reliability_009_streaming_crc_agrees_with_zlib(tensors, data) -> None:
    """Fed in any order, any subset (the rest read by the gap fill), the CRC is zlib's over the file."""
    from apr.format import open_file, save
    from apr.format.footer_check import FooterCheck

    raw = bytearray(save(tensors, {"architecture": "llama"}))
    if data.draw(st.booleans(), label="damaged"):
        at = data.draw(st.integers(data_offset(raw), len(raw) - 1), label="byte")
        raw[at] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    stored, computed = footer_error(bytes(raw))
    with tempfile.NamedTemporaryFile(suffix=".apr") as handle:
        handle.write(bytes(raw))
        handle.flush()
        with open_file(handle.name) as reader, FooterCheck(handle.name) as check:
            order = data.draw(st.permutations(reader.keys()), label="order")
            fed = order[: data.draw(st.integers(0, len(order)), label="fed")]
            for name in fed:
                check.feed_tensor(reader, name)
            damage = check.finish(reader)
    if stored == computed:
        assert damage is None
    else:
        assert damage is not None and (damage.footer_stored, damage.footer_computed) == (stored, computed)
