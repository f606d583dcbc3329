"""APR v2, byte-compatible with aprender: ``save_file``/``load_file`` and a lazy ``open_file``.

The names below are loaded on first use (PEP 562): ``import apr.format.atomic`` or
``apr.format.header`` must not pay for the reader, the writer and numpy (~60 ms of every
``apr inspect`` and ``apr stamp``, issue 17). ``from apr.format import open_file`` works as before.

Example:
    >>> import numpy as np
    >>> from apr.format import save, load
    >>> data = save({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, {"architecture": "llama"})
    >>> load(data)["w"].tolist()
    [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apr._lazy import lazy_names

if TYPE_CHECKING:
    from apr.format.dtypes import DType
    from apr.format.header import ALIGNMENT, HEADER_SIZE, MAGIC, Flags, Header
    from apr.format.quant import PackedTensor, dequantize, quantize_q4, quantize_q8
    from apr.format.reader import AprReader, load, load_file, open_bytes, open_file
    from apr.format.sniff import FileFormat, sniff_bytes, sniff_format
    from apr.format.tensor_index import TensorEntry
    from apr.format.writer import save, save_file

_HOME: dict[str, str] = {
    "DType": "dtypes",
    "ALIGNMENT": "header", "HEADER_SIZE": "header", "MAGIC": "header", "Flags": "header", "Header": "header",
    "PackedTensor": "quant", "dequantize": "quant", "quantize_q4": "quant", "quantize_q8": "quant",
    "AprReader": "reader", "load": "reader", "load_file": "reader", "open_bytes": "reader", "open_file": "reader",
    "FileFormat": "sniff", "sniff_bytes": "sniff", "sniff_format": "sniff",
    "TensorEntry": "tensor_index",
    "save": "writer", "save_file": "writer",
}


__getattr__, __dir__ = lazy_names(__name__, globals(), _HOME)

__all__ = [
    "ALIGNMENT",
    "HEADER_SIZE",
    "MAGIC",
    "AprReader",
    "DType",
    "FileFormat",
    "Flags",
    "Header",
    "PackedTensor",
    "TensorEntry",
    "dequantize",
    "load",
    "load_file",
    "open_bytes",
    "open_file",
    "quantize_q4",
    "quantize_q8",
    "save",
    "save_file",
    "sniff_bytes",
    "sniff_format",
]
