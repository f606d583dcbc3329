"""apr/errors.py's JSON error objects key by key, and the three-part OS error by example (what the
clean mutation run of the module left unchecked, issue 23's habit: JSON keys are interface)."""

from __future__ import annotations

import errno

from apr.errors import AprError, AprIOError, HubError, HubNotFoundError, ResumeError, UnsupportedArchitectureError

BASE = {"path": None, "offset": None, "field": None, "hint": None}


def test_each_error_adds_its_own_keys_to_the_base_object() -> None:
    unsupported = UnsupportedArchitectureError("no", architecture="gpt2", reasons=("gelu", "bias"))
    assert unsupported.to_dict() == {"code": "unsupported-architecture", "type": "UnsupportedArchitectureError",
                                     "message": "no", **BASE, "exit_code": 5, "architecture": "gpt2",
                                     "reasons": ["gelu", "bias"]}
    resume = ResumeError("differs", differences=("seed: 1 != 2",))
    assert resume.to_dict() == {"code": "resume-refused", "type": "ResumeError", "message": "differs", **BASE,
                                "exit_code": 5, "differences": ["seed: 1 != 2"]}
    assert HubError("down", status=503).to_dict() == {"code": "network-error", "type": "HubError", "message": "down",
                                                      **BASE, "exit_code": 10, "status": 503}
    assert HubNotFoundError("gone", status=404, field="REPO").to_dict()["status"] == 404
    assert HubError("down").status is None


def test_str_without_args_is_the_message() -> None:
    error = AprError("what is wrong", hint="how to fix it")
    assert str(error) == "what is wrong\n  fix: how to fix it"
    error.args = ()
    assert str(error) == "what is wrong"


def test_an_os_error_in_three_parts_by_example() -> None:
    full = AprIOError.from_os_error(OSError(errno.ENOSPC, "No space left on device", "/data/out.apr"), action="write")
    assert (full.message, full.path, full.errno, full.strerror) == (
        "cannot write: no space left on device (ENOSPC)", "/data/out.apr", errno.ENOSPC, "No space left on device")
    assert full.hint == "free space on that disk (df -h /data) or write to another folder"
    # no action: the reason alone; no path: the hint's folder is "." and its file "the file"
    bare = AprIOError.from_os_error(OSError(errno.EACCES, "Permission denied"))
    assert (bare.message, bare.path) == ("permission denied (EACCES)", None)
    assert bare.hint == "check the permissions of the file and its folder (ls -ld .), or use another folder"
    # an errno no hint names: the general one; a bytes file name is decoded, not shown as b'...'
    odd = AprIOError.from_os_error(OSError(errno.ETXTBSY, "Text file busy", b"/tmp/x.apr"))
    assert (odd.path, odd.hint) == ("/tmp/x.apr", "check the path and that the disk works, then retry")
    assert AprIOError.from_os_error(OSError(errno.EIO, "I/O", 7)).path == "7"  # a name that is not a path


def test_an_os_error_without_errno_or_words() -> None:
    worded = AprIOError.from_os_error(OSError("short write"))
    assert (worded.message, worded.hint) == (
        "short write", "the disk may be full or failing: check its free space (df -h .), then retry")
    assert AprIOError.from_os_error(OSError()).message == "oSError"  # the type's name, first letter lowered
    assert AprIOError.from_os_error(OSError(10**6, "Strange")).message == "strange"  # an errno with no name
