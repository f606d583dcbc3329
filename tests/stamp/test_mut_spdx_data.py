"""`--data-license` refusals name their own flag (issue 23).

The committed mutation configuration on a clean clone left one spdx mutant alive: the flag that
`validate_data_license` passes on. It is the error's ``field`` (in `--json` output, which scripts
read) and the flag its hint tells the user to pass again, so a refusal must say ``--data-license``,
never ``--license``.
"""

from __future__ import annotations

import pytest

from apr.errors import LicenseError
from apr.stamp.spdx import validate_data_license


@pytest.mark.parametrize(("value", "strict"), [
    ("Apache2", True),          # not an SPDX id: refused in strict mode only
    ("MIT OR", True),           # a malformed expression
    ("unknown", False),         # a placeholder is refused in either mode
    ("   ", False),             # blank
])
def test_a_refused_data_license_names_the_data_license_flag(value: str, strict: bool) -> None:
    with pytest.raises(LicenseError) as caught:
        validate_data_license(value, strict=strict)
    error = caught.value
    assert error.field == "--data-license"
    assert error.to_dict()["field"] == "--data-license"
    assert str(error).startswith(f"--data-license {value!r} ")
    assert "`--data-license " in (error.hint or "")
    assert "`--license " not in (error.hint or "")


def test_free_text_is_kept_verbatim_unless_strict() -> None:
    assert validate_data_license("Apache-2.0 / permissive-aggregate") == "Apache-2.0 / permissive-aggregate"
    with pytest.raises(LicenseError):
        validate_data_license("Apache-2.0 / permissive-aggregate", strict=True)
