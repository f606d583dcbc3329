"""`apr inspect FILE [--quality] [--explain] [--tensors] [--json]`: what an APR v2 file holds.

Reads only the header, metadata and index, so it costs the same on a 4 GiB file as on a 4 KiB one.
The JSON document follows aprender's InspectResult (docs/aprender-format.md §3.2), with the header,
provenance block and tensor table added.
"""

from __future__ import annotations

import argparse
from typing import Any

from apr.cli.output import emit_result, literal, out

_FLAG_KEYS = (
    ("lz4_compressed", 0x0001),
    ("zstd_compressed", 0x0002),
    ("encrypted", 0x0004),
    ("signed", 0x0008),
    ("sharded", 0x0010),
    ("quantized", 0x0020),
    ("has_vocab", 0x0200),
)

# Metadata keys of the inspect document, in aprender's order; True = always present (null if unset).
_META_KEYS: tuple[tuple[str, bool], ...] = (
    ("model_type", False),
    ("name", False),
    ("description", False),
    ("author", False),
    ("license", True),
    ("data_source", True),
    ("data_license", True),
    ("source", False),
    ("original_format", False),
    ("created_at", False),
    ("architecture", True),
    ("hf_architecture", True),
    ("hf_model_type", True),
    ("param_count", False),
    ("vocab_size", False),
    ("hidden_size", False),
    ("num_layers", False),
    ("num_heads", False),
    ("num_kv_heads", False),
    ("intermediate_size", False),
    ("max_position_embeddings", False),
    ("rope_theta", False),
    ("chat_template", False),
    ("chat_format", False),
    ("special_tokens", False),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="show an .apr file's header, identity, provenance and tensors")
    p.add_argument("file", help="the .apr file")
    p.add_argument("--quality", action="store_true", help="add the 100-point quality score")
    p.add_argument("--explain", action="store_true", help="with --quality: the stamp command for each missing point")
    p.add_argument("--tensors", action="store_true", help="list every tensor (text mode; JSON always lists them)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(handler=run, reads_checkpoints=("file",))


def _empty(value: Any) -> bool:
    return value is None or value == ""


def inspect_document(reader, *, quality: bool, explain: bool) -> dict[str, Any]:
    """The inspect document for an open `AprReader` (pure: no printing)."""
    from apr.identity.explain import attainable_score, explain_quality, license_notes
    from apr.identity.quality import score_quality

    meta = reader.metadata
    header = reader.header
    doc: dict[str, Any] = {
        "input": reader.path,
        "valid": True,
        "format": "APR v2",
        "version": "{}.{}".format(*header.version),
        "tensor_count": header.tensor_count,
        "bytes": reader.file_size,
        "checksum_valid": reader.is_checksum_valid,
    }
    for key in ("architecture", "num_layers", "num_heads", "hidden_size", "vocab_size"):
        if not _empty(meta.get(key)):
            doc[key] = meta[key]
    doc["flags"] = {name: bool(header.flags & bit) for name, bit in _FLAG_KEYS}
    doc["flags_bits"] = header.flags
    metadata: dict[str, Any] = {}
    for key, always in _META_KEYS:
        value = meta.get(key)
        if key == "architecture":
            metadata[key] = "unknown" if _empty(value) else value
        elif key == "param_count":
            if value:
                metadata[key] = value
        elif always:
            metadata[key] = None if _empty(value) else value
        elif not _empty(value):
            metadata[key] = value
    if "source_metadata" in meta:
        metadata["source_metadata"] = meta["source_metadata"]
    doc["metadata"] = metadata
    doc["provenance"] = {key: metadata[key] for key in ("license", "data_source", "data_license")}
    doc["header"] = {
        "flags": header.flags,
        "tensor_count": header.tensor_count,
        "metadata_offset": header.metadata_offset,
        "metadata_size": header.metadata_size,
        "tensor_index_offset": header.tensor_index_offset,
        "data_offset": header.data_offset,
        "checksum": f"0x{header.checksum:08x}",
    }
    doc["tensors"] = [
        {"name": e.name, "dtype": e.dtype.label, "shape": list(e.shape), "offset": e.offset, "size": e.size}
        for e in reader.entries
    ]
    if quality:
        score = score_quality(checksum_valid=reader.is_checksum_valid, metadata=meta, flags=header.flags)
        doc["quality"] = score.to_dict()
        if explain:
            advice = explain_quality(score, path=reader.path or "FILE", tensor_names=reader.keys())
            doc["quality"]["explain"] = [a.to_dict() for a in advice]
            doc["quality"]["attainable_score"] = attainable_score(score)
            doc["quality"]["notes"] = license_notes(meta)
    return doc


def _human_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = n / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # and above: no larger unit


def _render(doc: dict[str, Any]) -> None:
    """Print the document for people. Every value from the file is printed literally (`literal`):
    a tensor named ``[/x]`` or a license ``[bold]MIT`` is data, never rich markup."""
    from rich.table import Table

    from apr.format.header import FLAG_LABELS

    console = out()
    meta = doc["metadata"]
    console.print(literal(doc["input"], style="bold"))
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("  Format", doc["format"])
    table.add_row("  Version", doc["version"])
    table.add_row("  Size", f"{_human_size(doc['bytes'])} ({doc['bytes']} bytes)")
    table.add_row("  Tensors", str(doc["tensor_count"]))
    table.add_row("  Checksum", literal("VALID") if doc["checksum_valid"] else literal("INVALID", style="red"))
    off = doc["header"]["data_offset"]
    table.add_row("  Data Offset", f"0x{off:x} ({off})")
    labels = [label for flag, label in FLAG_LABELS if doc["header"]["flags"] & flag]
    table.add_row("  Flags", " | ".join(labels) if labels else "(none)")
    console.print(table)
    console.print("  Architecture:")
    arch = Table(show_header=False, box=None, pad_edge=False)
    for label, key in (
        ("Family:", "architecture"),
        ("HF Class:", "hf_architecture"),
        ("HF model_type:", "hf_model_type"),
        ("Parameters:", "param_count"),
        ("Hidden Size", "hidden_size"),
        ("Layers", "num_layers"),
        ("Attention Heads", "num_heads"),
        ("KV Heads", "num_kv_heads"),
        ("Intermediate Size", "intermediate_size"),
        ("Vocab Size", "vocab_size"),
        ("Max Position", "max_position_embeddings"),
        ("RoPE Theta", "rope_theta"),
    ):
        if meta.get(key) is not None:
            arch.add_row(f"    {label}", literal(meta[key]))
    console.print(arch)
    console.print("  Provenance:")
    for key in ("license", "data_source", "data_license"):
        value = meta.get(key)
        console.print(literal(f"    {key}: {value if value is not None else '(missing)'}"))
    if "quality" in doc:
        q = doc["quality"]
        b = q["breakdown"]
        console.print("  Quality (0-100):")
        console.print(f"    Score: {q['score']} / 100")
        console.print(f"    Ship-ready (≥90 per AC-SHIP2-007): {'YES' if q['ship_ready'] else 'NO'}")
        console.print("    Breakdown:")
        console.print(f"      physics:     {b['physics']} / 20")
        console.print(f"      structural:  {b['structural']} / 20")
        console.print(f"      provenance:  {b['provenance']} / 25")
        console.print(f"      hf_identity: {b['hf_identity']} / 20")
        console.print(f"      tokenizer:   {b['tokenizer']} / 15")
        if "explain" in q:
            console.print(f"    Missing points (reachable by stamping: {q['attainable_score']} / 100):")
            if not q["explain"]:
                console.print("      none — the file earns every point")
            for item in q["explain"]:
                console.print(literal(f"      -{item['points']:>2} {item['part']}: {item['what']}"))
                if item["command"]:
                    console.print(literal(f"          fix: {item['command']}"))
                else:
                    console.print(literal(f"          note: {item['note']}"))
            for note in q["notes"]:  # set with "explain", always
                console.print(literal(f"    Note: {note}"))
    by_dtype: dict[str, int] = {}
    for t in doc["tensors"]:
        by_dtype[t["dtype"]] = by_dtype.get(t["dtype"], 0) + 1
    console.print("  Tensors: " + ", ".join(f"{n} {d}" for d, n in sorted(by_dtype.items())) if by_dtype else "  Tensors: none")
    if doc.get("_show_tensors"):
        tt = Table("name", "dtype", "shape", "offset", "bytes", box=None, pad_edge=False)
        for t in doc["tensors"]:
            tt.add_row(literal(t["name"]), t["dtype"], str(t["shape"]), str(t["offset"]), str(t["size"]))
        console.print(tt)


def run(args: argparse.Namespace) -> int:
    from apr.format import open_file

    with open_file(args.file, verify_checksum=False) as reader:
        doc = inspect_document(reader, quality=args.quality or args.explain, explain=args.explain)
    if args.json:
        return emit_result("inspect", doc, input=doc["input"])
    else:
        doc["_show_tensors"] = args.tensors
        _render(doc)
    return 0
