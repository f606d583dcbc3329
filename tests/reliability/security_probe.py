"""Run loaders under an audit hook and report what they opened and executed (a child process).

``python -m tests.reliability.security_probe FOLDER REPORT`` expects the folder `test_security.py`
prepares; it pre-imports every module first (so module code is not mistaken for evaluated input),
installs a `sys.addaudithook`, runs each loader, and writes one JSON document to REPORT: every open of a
path under ``FOLDER/inputs`` with its mode and flags, and every exec/eval of code that is not a
module file, every process spawn, every pickle or marshal load.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

_SPAWN = {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen", "os.fork",
          "pickle.find_class", "marshal.loads", "marshal.load", "ctypes.dlopen"}


def main(folder: Path, report: Path) -> None:
    import gguf  # noqa: F401
    import jinja2  # noqa: F401 - imported lazily by the chat template path, if at all
    import safetensors.numpy  # noqa: F401

    import apr.cli.main
    import apr.cli.export_cmd
    import apr.cli.import_cmd
    import apr.cli.stamp_cmd  # noqa: F401
    from apr.cli.main import main as cli
    from apr.convert.hf_config import metadata_from_hf_config, read_config_json
    from apr.tokenizer import read_tokenizer_dir
    from falsifiers.lint import lint_paths

    inputs = os.fspath((folder / "inputs").resolve())
    opened: list[dict] = []
    executed: list[str] = []

    def importing() -> bool:
        """Whether the event comes from the import system (loading a .pyc is a marshal.loads)."""
        frame = sys._getframe(2)
        while frame is not None:
            if "importlib" in frame.f_code.co_filename:
                return True
            frame = frame.f_back
        return False

    def hook(event: str, args: tuple) -> None:
        if event in ("exec", "compile", "marshal.loads", "marshal.load") and importing():
            return
        if event == "open":
            path, mode, flags = args
            if isinstance(path, (str, bytes, os.PathLike)) and os.fsdecode(path).startswith(inputs):
                opened.append({"path": os.fsdecode(path)[len(inputs) + 1:], "mode": mode, "flags": flags})
        elif event == "exec":
            code = args[0]
            filename = getattr(code, "co_filename", "?")
            if not os.path.isfile(filename):
                executed.append(f"exec of {filename}")
        elif event == "compile":
            source, filename = args[0], args[1]
            if source is not None and not os.path.isfile(os.fsdecode(filename) if filename else ""):
                executed.append(f"compile of {filename}")
        elif event in _SPAWN or event.startswith("os.exec") or event.startswith("os.spawn"):
            executed.append(event)

    sys.addaudithook(hook)
    inp = folder / "inputs"
    out = folder / "outputs"
    errors = []
    for label, action in (
        ("lint", lambda: lint_paths([inp / "evil-v1.yaml"])),
        ("config", lambda: metadata_from_hf_config(read_config_json(inp / "hf" / "config.json"))),
        ("tokenizer", lambda: read_tokenizer_dir(inp / "hf")),
        ("import", lambda: cli(["import", os.fspath(inp / "hf"), "-o", os.fspath(out / "m.apr")])),
        ("stamp-o", lambda: cli(["stamp", os.fspath(inp / "m.apr"), "--license", "MIT", "-o",
                                 os.fspath(out / "s.apr")])),
        ("export", lambda: cli(["export", os.fspath(inp / "m.apr"), "-o", os.fspath(out / "hf")])),
        ("export-gguf", lambda: cli(["export", os.fspath(inp / "m.apr"), "--format", "gguf", "-o",
                                     os.fspath(out / "m.gguf")])),
        ("inspect", lambda: cli(["inspect", os.fspath(inp / "m.apr"), "--json"])),
        ("validate", lambda: cli(["validate", os.fspath(inp / "m.apr"), "--json"])),
    ):
        try:
            code = action()
            if isinstance(code, int) and code != 0:
                errors.append(f"{label}: exit {code}")
        except Exception as err:  # noqa: BLE001
            errors.append(f"{label}: {type(err).__name__}: {err}")
    report.write_text(json.dumps({"opened": opened, "executed": executed, "errors": errors}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
