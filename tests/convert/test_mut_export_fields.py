"""apr/convert/export_fields.py (issue 23): what an export refuses before writing, at the exact
float32 boundary, and the fix each refusal names."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from apr.convert.export_fields import float32_value, utf8_text
from apr.errors import ConvertError

F32_MAX = float(np.finfo(np.float32).max)  # 3.4028234663852886e+38, independent of the module


@pytest.mark.parametrize("value", ["", "plain", "ünïcödé ✓", "\U0001f600 emoji"])
def test_utf8_text_returns_encodable_text_unchanged(value):
    assert utf8_text(value, field="name", path="m.apr") == value


@pytest.mark.parametrize(("field", "hint"), [
    ("name", "set a new one: apr stamp m/x.apr --in-place --name '...'"),
    ("description", "set a new one: apr stamp m/x.apr --in-place --description '...'"),
    ("chat_template", "the checkpoint's 'chat_template' is damaged: re-import or re-train m/x.apr from its source"),
    ("names", "the checkpoint's 'names' is damaged: re-import or re-train m/x.apr from its source"),
])
def test_utf8_text_refuses_a_lone_surrogate_naming_the_field_and_its_fix(field, hint):
    with pytest.raises(ConvertError) as info:
        utf8_text("ab\udfffc", field=field, path=Path("m/x.apr"))
    err = info.value
    assert (err.field, err.path, err.hint) == (field, "m/x.apr", hint)
    assert f"metadata {field!r} holds a character that is not valid Unicode text" in str(err)
    assert "(a lone surrogate '\\udfff' at character 2)" in str(err)


@pytest.mark.parametrize("value", [0.0, 1e-6, -1e-6, 10000, 1e6, F32_MAX, -F32_MAX, 5e-324])
def test_float32_value_accepts_what_float32_can_hold(value):
    out = float32_value(value, field="rope_theta", path="m.apr")
    assert out == float(value) and type(out) is float


@pytest.mark.parametrize("value", [np.nextafter(F32_MAX, math.inf), -np.nextafter(F32_MAX, math.inf), 1e39, 1e308,
                                   math.inf, -math.inf, math.nan])
def test_float32_value_refuses_beyond_float32(value):
    with pytest.raises(ConvertError) as info:
        float32_value(value, field="rms_norm_eps", path="d/m.apr")
    err = info.value
    assert (err.field, err.path) == ("rms_norm_eps", "d/m.apr")
    assert err.hint == "the checkpoint's 'rms_norm_eps' is damaged: re-import or re-train d/m.apr from its source"
    assert f"metadata 'rms_norm_eps' = {float(value)!r} does not fit a float32" in str(err)
    assert "which is how GGUF stores it" in str(err)
