"""apr.format.dtypes: the plain-Python tables agree with numpy, and a header read stays numpy-free."""

from __future__ import annotations

import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

from apr.format.dtypes import DType, dtype_from_numpy, expected_nbytes

PLAIN = [DType.F32, DType.F16, DType.F64, DType.I32, DType.I64, DType.I8, DType.U8]


@pytest.mark.parametrize("code", PLAIN)
def test_plain_codes_round_trip_through_numpy_and_sizes_agree(code: DType) -> None:
    dtype = code.numpy_dtype
    assert dtype.byteorder in "<|="
    assert dtype_from_numpy(dtype) is code
    assert dtype_from_numpy(dtype.newbyteorder(">")) is code  # big-endian input normalised
    assert expected_nbytes(code, (3, 5)) == 15 * dtype.itemsize  # the hand-written sizes are numpy's


def test_expected_numpy_dtypes() -> None:
    assert [DType(c).numpy_dtype.str for c in PLAIN] == ["<f4", "<f2", "<f8", "<i4", "<i8", "|i1", "|u1"]


def test_bf16_is_ml_dtypes_and_packed_codes_have_no_numpy_type() -> None:
    assert DType.BF16.numpy_dtype == np.dtype(ml_dtypes.bfloat16)
    assert dtype_from_numpy(np.dtype(ml_dtypes.bfloat16)) is DType.BF16
    assert expected_nbytes(DType.BF16, (4,)) == 8
    for code in (DType.Q4_K, DType.Q6_K, DType.APR_Q4, DType.APR_Q8):
        with pytest.raises(TypeError, match="packed dtype"):
            code.numpy_dtype  # noqa: B018 - the lookup is the test
    assert dtype_from_numpy(np.dtype(np.complex64)) is None


def test_reading_a_header_does_not_import_numpy(tmp_path) -> None:
    """`apr inspect` and `apr stamp` read only the header, metadata and index: numpy (~60 ms) waits
    for the first tensor (issue 17); ``from apr.format import open_file`` still works."""
    from apr.format import save_file

    path = tmp_path / "m.apr"
    save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, path, {"architecture": "llama"})
    probe = ("import sys\nfrom apr.format import open_file\nr = open_file(sys.argv[1])\n"
             "assert r.keys() == ['w'] and r.metadata['architecture'] == 'llama', r.keys()\n"
             "assert 'numpy' not in sys.modules, 'numpy imported by a header read'\n"
             "print(r.get_tensor('w').tolist())\n")
    done = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert (done.returncode, done.stdout) == (0, "[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]\n"), done.stderr


def test_the_package_names_load_on_first_use() -> None:
    import apr.format as package
    from apr.format import reader, writer

    assert package.open_file is reader.open_file and package.save_file is writer.save_file
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="no attribute 'open_fiel'"):
        package.open_fiel  # noqa: B018 - the lookup is the test
