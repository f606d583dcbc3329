"""What a GGUF import keeps, a GGUF export writes back (issue 15, part 5): the pre-tokenizer name
and the license. Checked with the `gguf` package's reader, not our own."""

from __future__ import annotations

import os

import gguf
import pytest

from apr.cli.main import main
from apr.format import open_file
from tests.reliability import cli_targets as ct


def _gguf_string(path, key: str) -> str | None:
    field = gguf.GGUFReader(os.fspath(path)).get_field(key)
    return None if field is None else field.contents()


@pytest.mark.parametrize(("pre", "license", "expected_license"), [
    ("smollm", "Apache-2.0", "Apache-2.0"),
    ("qwen2", "apache-2.0 OR mit", "Apache-2.0 OR MIT"),
    (None, None, "Apache-2.0"),  # the base model's own license; the default pre-tokenizer
])
def test_pre_tokenizer_and_license_survive_gguf_import_and_export(tmp_path, pre, license, expected_license):
    tensors, metadata, flags = ct._base_model()
    extra = {k: v for k, v in (("tokenizer.pre_type", pre), ("license", license)) if v is not None}
    ct.write_with_raw_metadata(tmp_path / "m.apr", tensors, {**metadata, **extra}, flags)
    assert main(["export", str(tmp_path / "m.apr"), "-o", str(tmp_path / "a.gguf")]) == 0
    assert _gguf_string(tmp_path / "a.gguf", "tokenizer.ggml.pre") == (pre or "gpt-2")
    assert main(["import", str(tmp_path / "a.gguf"), "-o", str(tmp_path / "b.apr")]) == 0
    with open_file(tmp_path / "b.apr") as reader:
        assert reader.metadata.get("tokenizer.pre_type") == (pre or "gpt-2")
        assert reader.metadata.get("license") == expected_license
    assert main(["export", str(tmp_path / "b.apr"), "-o", str(tmp_path / "c.gguf")]) == 0
    assert _gguf_string(tmp_path / "c.gguf", "tokenizer.ggml.pre") == (pre or "gpt-2")
    # the source file's own spelling comes back (the APR field holds the canonical form)
    assert _gguf_string(tmp_path / "c.gguf", "general.license") == (license or expected_license)


def test_a_license_that_is_not_an_expression_stays_in_source_metadata(tmp_path, caplog):
    tensors, metadata, flags = ct._base_model()
    ct.write_with_raw_metadata(tmp_path / "m.apr", tensors, {**metadata, "license": "see LICENSE file"}, flags)
    assert main(["export", str(tmp_path / "m.apr"), "-o", str(tmp_path / "a.gguf")]) == 0
    assert main(["import", str(tmp_path / "a.gguf"), "-o", str(tmp_path / "b.apr")]) == 0
    with open_file(tmp_path / "b.apr") as reader:
        assert "license" not in reader.metadata or reader.metadata["license"] is None
        assert reader.metadata["source_metadata"]["general.license"] == "see LICENSE file"
