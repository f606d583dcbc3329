"""APR v2, byte-compatible with aprender: ``save_file``/``load_file`` and a lazy ``open_file``.

Example:
    >>> import numpy as np
    >>> from apr.format import save, load
    >>> data = save({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, {"architecture": "llama"})
    >>> load(data)["w"].tolist()
    [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
"""

from apr.format.dtypes import DType
from apr.format.header import ALIGNMENT, HEADER_SIZE, MAGIC, Flags, Header
from apr.format.quant import PackedTensor, dequantize, quantize_q4, quantize_q8
from apr.format.reader import AprReader, load, load_file, open_bytes, open_file
from apr.format.sniff import FileFormat, sniff_bytes, sniff_format
from apr.format.tensor_index import TensorEntry
from apr.format.writer import save, save_file

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
