"""`apr tokenize` in-process (issue 23: the module had no mutation figure): the ids written equal
the tokenizers library's own encoding of each file plus the EOS id, the JSON document states what
was written, every refusal has its exit code and field, and nothing is written before every
input has been checked."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.stamp_builders import run_cli as _run
from apr.train.shards import open_dataset
from tests.convert.tiny_hf import train_tokenizer

TEXTS = ("The capital of France is Paris.\nWhat is the capital of France?\n",
         "héllo wörld — ünïcode text\nand a second line\n")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tok") / "tok"
    train_tokenizer(folder)
    return folder


@pytest.fixture()
def corpus(tmp_path: Path) -> list[Path]:
    files = []
    for i, text in enumerate(TEXTS):
        path = tmp_path / f"text{i}.txt"
        path.write_text(text, encoding="utf-8")
        files.append(path)
    return files


def _oracle(tokenizer: Path) -> tuple[object, int, int]:
    """The tokenizers library's own tokenizer, its EOS id and vocabulary size."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer / "tokenizer.json"))
    eos = tok.token_to_id("<|im_end|>")
    assert eos is not None
    return tok, eos, tok.get_vocab_size()


def _ids(tok: object, path: Path) -> list[int]:
    return list(tok.encode(path.read_text(encoding="utf-8"), add_special_tokens=False).ids)  # type: ignore[attr-defined]


def _tokenize(corpus: list[Path], tokenizer: Path, output: Path, *flags: str) -> tuple[int, str, str]:
    return _run(["tokenize", *map(str, corpus), "--tokenizer", str(tokenizer), "-o", str(output), *flags])


def test_the_shards_hold_each_files_ids_then_eos_and_the_json_says_so(corpus: list[Path], tokenizer: Path,
                                                                       tmp_path: Path) -> None:
    tok, eos, vocab = _oracle(tokenizer)
    expected = [_ids(tok, corpus[0]) + [eos], _ids(tok, corpus[1]) + [eos]]
    total = sum(map(len, expected))
    out = tmp_path / "data"
    code, stdout, stderr = _tokenize(corpus, tokenizer, out, "--json", "--shard-tokens", "7")
    assert code == 0, stderr
    document = json.loads(stdout)
    assert document["schema"] == "apr.tokenize/1" and document["command"] == "tokenize"
    assert document["ok"] is True and document["exit_code"] == 0
    assert document["input"] == [str(p) for p in corpus]
    assert document["output"] == str(out)
    assert document["vocab_size"] == vocab and document["dtype"] == "uint16"
    assert document["eos_token_id"] == eos and document["num_tokens"] == total
    assert document["sources"] == [{"path": str(corpus[0]), "tokens": len(expected[0])},
                                   {"path": str(corpus[1]), "tokens": len(expected[1])}]
    assert [s["num_tokens"] for s in document["shards"]] == [7] * (total // 7) + ([total % 7] if total % 7 else [])
    assert len(document["shards"]) == math.ceil(total / 7)
    arrays, got_vocab = open_dataset(out)
    assert got_vocab == vocab
    assert np.concatenate(arrays).tolist() == expected[0] + expected[1]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert {k: manifest[k] for k in ("vocab_size", "eos_token_id", "num_tokens", "sources")} == \
        {k: document[k] for k in ("vocab_size", "eos_token_id", "num_tokens", "sources")}


def test_no_eos_writes_the_ids_alone(corpus: list[Path], tokenizer: Path, tmp_path: Path) -> None:
    tok, _, _ = _oracle(tokenizer)
    out = tmp_path / "data"
    code, stdout, _ = _tokenize(corpus, tokenizer, out, "--json", "--no-eos")
    assert code == 0
    document = json.loads(stdout)
    assert document["eos_token_id"] is None
    assert [s["tokens"] for s in document["sources"]] == [len(_ids(tok, corpus[0])), len(_ids(tok, corpus[1]))]
    arrays, _ = open_dataset(out)
    assert np.concatenate(arrays).tolist() == _ids(tok, corpus[0]) + _ids(tok, corpus[1])
    assert len(document["shards"]) == 1  # the default shard size holds them all


def test_one_id_per_shard_is_allowed(corpus: list[Path], tokenizer: Path, tmp_path: Path) -> None:
    tok, _, _ = _oracle(tokenizer)
    code, stdout, _ = _tokenize(corpus[:1], tokenizer, tmp_path / "data", "--json", "--shard-tokens", "1")
    assert code == 0
    document = json.loads(stdout)
    assert [s["num_tokens"] for s in document["shards"]] == [1] * (len(_ids(tok, corpus[0])) + 1)


def test_the_text_line_says_what_was_written(corpus: list[Path], tokenizer: Path, tmp_path: Path) -> None:
    tok, _, vocab = _oracle(tokenizer)
    total = len(_ids(tok, corpus[0])) + len(_ids(tok, corpus[1])) + 2
    out = tmp_path / "da[bold]ta"  # printed as it is, never read as markup
    code, stdout, _ = _tokenize(corpus, tokenizer, out)
    assert code == 0
    assert stdout == f"wrote {total} tokens in 1 shard(s) to {out} (vocab {vocab}, uint16)\n"


def _error(stdout: str) -> dict:
    document = json.loads(stdout)
    assert document["ok"] is False
    return document["error"]


@pytest.mark.parametrize("count", ["0", "-3"])
def test_a_shard_size_below_one_is_a_usage_error(count: str, corpus: list[Path], tokenizer: Path,
                                                 tmp_path: Path) -> None:
    code, stdout, _ = _tokenize(corpus, tokenizer, tmp_path / "data", "--json", "--shard-tokens", count)
    assert code == 64
    error = _error(stdout)
    assert error["field"] == "--shard-tokens" and error["exit_code"] == 64
    assert f"got {count}" in error["message"]
    assert not (tmp_path / "data").exists()


def test_a_missing_text_file_is_not_found(corpus: list[Path], tokenizer: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    code, stdout, _ = _tokenize([corpus[0], missing], tokenizer, tmp_path / "data", "--json")
    assert code == 3
    error = _error(stdout)
    assert error["field"] == "TEXT" and error["path"] == str(missing)
    assert "not found" in error["message"]
    assert not (tmp_path / "data").exists()


def test_a_folder_given_as_text_is_not_a_file(corpus: list[Path], tokenizer: Path, tmp_path: Path) -> None:
    code, stdout, _ = _tokenize([corpus[0], tmp_path], tokenizer, tmp_path / "data", "--json")
    assert code == 3 and _error(stdout)["field"] == "TEXT"


def test_a_file_that_is_not_utf8_is_refused_at_its_offset_before_any_write(corpus: list[Path], tokenizer: Path,
                                                                            tmp_path: Path) -> None:
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"plain ascii, then caf" + "é".encode("latin-1") + b" and more")
    code, stdout, _ = _tokenize([corpus[0], bad], tokenizer, tmp_path / "data", "--json")
    assert code == 64
    error = _error(stdout)
    assert error["field"] == "TEXT" and error["path"] == str(bad)
    assert error["offset"] == len("plain ascii, then caf")
    assert "UTF-8" in error["message"]
    assert error["hint"] and "iconv" in error["hint"]
    assert not (tmp_path / "data").exists()  # checked before anything was written


def test_the_output_may_not_be_the_tokenizer_folder(corpus: list[Path], tokenizer: Path, tmp_path: Path) -> None:
    import shutil

    tok = tmp_path / "tok"
    shutil.copytree(tokenizer, tok)
    before = sorted(p.name for p in tok.iterdir())
    code, stdout, _ = _tokenize(corpus, tok, tok, "--json", "--force")
    assert code == 5 and _error(stdout)["exit_code"] == 5
    assert sorted(p.name for p in tok.iterdir()) == before


def test_the_output_may_not_be_a_text_file(corpus: list[Path], tokenizer: Path, tmp_path: Path) -> None:
    before = corpus[1].read_bytes()
    code, stdout, _ = _tokenize(corpus, tokenizer, corpus[1], "--json", "--force")
    assert code == 5 and _error(stdout)["exit_code"] == 5
    assert corpus[1].read_bytes() == before


def test_force_replaces_an_earlier_dataset(corpus: list[Path], tokenizer: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    assert _tokenize(corpus, tokenizer, out)[0] == 0
    code, stdout, _ = _tokenize(corpus[:1], tokenizer, out, "--json")
    assert code == 5 and _error(stdout)["code"] == "output-exists"
    code, stdout, _ = _tokenize(corpus[:1], tokenizer, out, "--json", "--force")
    assert code == 0
    assert [s["path"] for s in json.loads(stdout)["sources"]] == [str(corpus[0])]


def test_an_unreadable_text_file_is_an_io_error(corpus: list[Path], tokenizer: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    def refuse(path: object) -> int | None:
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("apr.tokenizer.stream.utf8_error_offset", refuse)
    code, stdout, _ = _tokenize(corpus, tokenizer, tmp_path / "data", "--json")
    assert code == 7
    error = _error(stdout)
    assert error["field"] == "TEXT" and error["path"] == str(corpus[0])
    assert "Permission denied" in error["message"] and "Errno" not in error["message"]  # the OS's words only
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(("failure", "code"), [
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), 64),
    (OSError(5, "Input/output error"), 7),
])
def test_a_file_that_fails_while_it_is_encoded_is_named(failure: Exception, code: int, corpus: list[Path],
                                                         tokenizer: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The file changed (or the disk failed) between the check and the encoding: the error names the
    text file, with its own exit code, and the output folder is not committed."""
    def pieces(tokenizer: object, path: object, record: object):
        yield [1, 2]
        raise failure

    monkeypatch.setattr("apr.tokenizer.stream.encode_text_file", pieces)
    out = tmp_path / "data"
    got, stdout, _ = _tokenize(corpus, tokenizer, out, "--json")
    assert got == code
    error = _error(stdout)
    assert error["field"] == "TEXT" and error["path"] == str(corpus[0])
    assert error["exit_code"] == code
    assert str(failure.reason if isinstance(failure, UnicodeDecodeError) else failure.strerror) in error["message"]
    assert "Errno" not in error["message"]
    assert not (out / "manifest.json").exists()


def test_the_folder_is_claimed_for_apr_tokenize(corpus: list[Path], tokenizer: Path, tmp_path: Path) -> None:
    """The output policy's manifest names the command, so `--force` of another command (or of a
    later `apr tokenize`) can tell this dataset from foreign files."""
    out = tmp_path / "data"
    assert _tokenize(corpus, tokenizer, out)[0] == 0
    claim = json.loads((out / ".apr-output.json").read_text(encoding="utf-8"))
    assert claim["format"] == "apr-output/1" and claim["command"] == "apr tokenize"
    assert {"manifest.json"} | {p.name for p in out.glob("*.bin")} <= set(claim["files"])


def test_an_error_document_names_every_text_file_as_its_input(corpus: list[Path], tokenizer: Path,
                                                              tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    code, stdout, _ = _tokenize([corpus[0], missing], tokenizer, tmp_path / "data", "--json")
    assert code == 3
    document = json.loads(stdout)
    assert document["input"] == [str(corpus[0]), str(missing)] and document["exit_code"] == 3
