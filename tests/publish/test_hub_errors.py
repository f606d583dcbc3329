"""`apr publish`'s Hub errors: exit 10 (aprender's NetworkError) and 11 (HttpNotFound), by status.

The oracle is huggingface_hub itself: a real `HfApi` talks to a local HTTP server that answers each
status, or to a closed port, so the exceptions are the ones the library raises, not stand-ins.
"""

from __future__ import annotations

import errno
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import OfflineModeIsEnabled

from apr.errors import AprIOError, HubError, HubNotFoundError
from apr.publish.upload import hub_error, upload_staging

REPO = "someone/model"


class _Answer(http.server.BaseHTTPRequestHandler):
    status: ClassVar[int] = 500
    paths: ClassVar[list[str]] = []

    def _answer(self) -> None:
        _Answer.paths.append(self.path)
        body = json.dumps({"error": f"the server says {_Answer.status}"}).encode()
        self.send_response(_Answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _publish(endpoint: str, staging: Path, revision: str | None = None) -> BaseException:
    with pytest.raises(HubError) as info:
        upload_staging(staging, REPO, token="hf_test", revision=revision,
                       api=HfApi(endpoint=endpoint, token="hf_test"))
    return info.value


def _kept(staging: Path) -> str:
    return (f"the staging folder {staging} is kept: rerun the same command to retry "
            "(the upload skips files the repository already has)")


@pytest.mark.falsifies("FALSIFY-PUBLISH-005")
@pytest.mark.parametrize(("status", "fix"), [
    (401, "the token was refused: run `hf auth login` or set HF_TOKEN to a valid token"),
    (403, "the token cannot write to someone: use a token with write access to it"),
    (429, "the Hub is busy or failing: wait a few minutes"),
    (500, "the Hub is busy or failing: wait a few minutes"),
    (503, "the Hub is busy or failing: wait a few minutes"),
    (400, "read the Hub's answer above"),
    (499, "read the Hub's answer above"),  # just below the server errors
])
def test_a_refusal_is_exit_10_with_its_status_and_the_fix_for_it(server: str, tmp_path: Path, status: int,
                                                                  fix: str) -> None:
    _Answer.status = status
    error = _publish(server, tmp_path)
    assert type(error) is HubError and error.exit_code == 10 and error.code == "network-error"
    assert error.status == status and error.to_dict()["status"] == status
    assert error.message.startswith(f"could not publish {REPO}: the Hub answered HTTP {status}: ")
    assert f"the server says {status}" in error.message
    assert error.hint == f"{fix}; {_kept(tmp_path)}"
    assert isinstance(error.__cause__, OSError)  # huggingface_hub's HfHubHTTPError, chained


@pytest.mark.falsifies("FALSIFY-PUBLISH-005")
@pytest.mark.parametrize("revision", [None, "dev"])
def test_not_found_is_exit_11_naming_the_repository_and_branch(server: str, tmp_path: Path, revision) -> None:
    _Answer.status = 404
    error = _publish(server, tmp_path, revision)
    assert type(error) is HubNotFoundError and error.exit_code == 11 and error.code == "http-not-found"
    target = REPO if revision is None else f"{REPO} (branch dev)"
    assert error.message.startswith(f"the Hub has no {target}, or the token cannot see it: ")
    assert (error.status, error.field) == (404, "REPO")
    assert error.hint == f"check OWNER/NAME and --revision; the owner (user or organisation) must exist; {_kept(tmp_path)}"


@pytest.mark.falsifies("FALSIFY-PUBLISH-005")
def test_an_unreachable_hub_is_exit_10_without_a_status(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on: the connection is refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = _publish(f"http://127.0.0.1:{port}", tmp_path)
    assert type(error) is HubError and error.status is None
    assert error.message.startswith(f"cannot reach the Hugging Face Hub to publish {REPO}: ")
    assert error.hint == f"check the network connection (and HF_ENDPOINT, a proxy, HF_HUB_OFFLINE); {_kept(tmp_path)}"


@pytest.mark.parametrize("raised", [OfflineModeIsEnabled("offline"), TimeoutError("timed out"),
                                    ConnectionResetError(errno.ECONNRESET, "reset")])
def test_offline_mode_and_the_sockets_own_errors_are_unreachable(raised: BaseException) -> None:
    error = hub_error(raised, REPO, revision="dev", staging="stage")
    assert type(error) is HubError and error.status is None
    assert error.message == f"cannot reach the Hugging Face Hub to publish {REPO} (branch dev): {raised}"


def test_a_transport_error_is_known_by_its_class_in_any_http_library() -> None:
    """httpx's, httpx2's and requests' connection errors, matched by module and name in the MRO."""
    for module, name in [("httpx", "TransportError"), ("httpx2", "TransportError"),
                         ("requests.exceptions", "ConnectionError"), ("requests.exceptions", "Timeout")]:
        base = type(name, (Exception,), {"__module__": module})
        sub = type("ConnectError", (base,), {"__module__": module})  # a subclass is one too
        assert type(hub_error(sub("down"), REPO, revision=None, staging="s")) is HubError, (module, name)
    near = type("TransportError", (Exception,), {"__module__": "httpx_like"})
    assert hub_error(near("x"), REPO, revision=None, staging="s") is None


def test_a_local_read_error_is_the_disks_and_anything_else_is_not_ours(tmp_path: Path) -> None:
    denied = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "model.safetensors"))
    error = hub_error(denied, REPO, revision=None, staging=tmp_path)
    assert type(error) is AprIOError and error.exit_code == 7
    assert error.message.endswith(f"; {_kept(tmp_path)}")
    assert hub_error(KeyError("commit_url"), REPO, revision=None, staging=tmp_path) is None


def test_a_bug_inside_the_calls_reaches_the_guard_unchanged(tmp_path: Path) -> None:
    class Broken:
        def create_repo(self, *args: object, **kwargs: object) -> None:
            raise KeyError("not the Hub's")

    with pytest.raises(KeyError):
        upload_staging(tmp_path, REPO, token="t", api=Broken())


# --- the command: the code, the JSON envelope, the staging folder kept ----------------------------


@pytest.mark.falsifies("FALSIFY-PUBLISH-005")
@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize(("status", "exit_code", "code"), [(None, 10, "network-error"), (503, 10, "network-error"),
                                                           (404, 11, "http-not-found")])
def test_apr_publish_exits_10_or_11_and_keeps_what_it_staged(server: str, tmp_path: Path, tok_meta, capsys,
                                                             monkeypatch: pytest.MonkeyPatch, as_json: bool,
                                                             status, exit_code: int, code: str) -> None:
    pytest.importorskip("torch")  # readiness runs the model
    import huggingface_hub

    from apr.cli.main import main
    from apr.cli.schemas import validate_document
    from apr.readiness import build_card
    from tests.readiness.builders import build_checkpoint

    if status is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    else:
        _Answer.status, endpoint = status, server
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda token=None: HfApi(endpoint=endpoint, token=token))
    monkeypatch.setattr("apr.publish.upload.hub_token", lambda: "hf_test_token")
    good = build_checkpoint(tmp_path / "good.apr", tokenizer=tok_meta)
    card = tmp_path / "CARD.md"
    card.write_text(build_card(good), encoding="utf-8")
    stage = tmp_path / "stage"
    capsys.readouterr()
    argv = ["publish", REPO, str(good), "--model-card", str(card), "--staging", str(stage), "--formats", "apr"]
    assert main(argv + (["--json"] if as_json else [])) == exit_code
    captured = capsys.readouterr()
    if as_json:
        doc = json.loads(captured.out)
        validate_document(doc)  # the published envelope admits 10 and 11, and the error's status
        assert (doc["command"], doc["error"]["code"], doc["error"]["status"]) == ("publish", code, status)
        assert (doc["exit_code"], doc["error"]["exit_code"], doc["ok"]) == (exit_code, exit_code, False)
    else:
        assert "fix: " in captured.err and f"the staging folder {stage} is kept" in captured.err
        assert "Traceback" not in captured.err
    assert (stage / "model.apr").read_bytes() == good.read_bytes()  # staged as NAME.apr, kept for the rerun


def test_an_http_error_without_a_response_still_says_what_the_hub_said() -> None:
    """Some releases raise HfHubHTTPError without a response (or with one without a status): exit 10,
    no status, the message's first line, never an AttributeError inside the except clause."""
    from huggingface_hub.errors import HfHubHTTPError

    bare = HfHubHTTPError.__new__(HfHubHTTPError)  # no __init__: no response, no server_message
    bare.args = ("first line\nsecond line\nthird line",)
    error = hub_error(bare, REPO, revision=None, staging="stage")
    assert type(error) is HubError and error.status is None
    assert error.message == f"could not publish {REPO}: the Hub refused it: first line"
    assert error.hint == f"read the Hub's answer above; {_kept(Path('stage'))}"
    bare.response = None
    assert hub_error(bare, REPO, revision=None, staging="stage").message == error.message


def test_a_local_read_error_says_it_was_reading() -> None:
    denied = PermissionError(errno.EACCES, "Permission denied", "stage/model.safetensors")
    error = hub_error(denied, REPO, revision=None, staging="stage")
    assert error.message == f"cannot read: permission denied (EACCES); {_kept(Path('stage'))}"


class _Recording:
    """An HfApi that records its calls and returns ``info`` from upload_folder."""

    def __init__(self, info: object) -> None:
        self.info, self.calls = info, []

    def create_repo(self, repo: str, **kwargs: object) -> None:
        self.calls.append(("create_repo", repo, kwargs))

    def upload_folder(self, **kwargs: object) -> object:
        self.calls.append(("upload_folder", kwargs["repo_id"], kwargs))
        return self.info


def test_the_library_defaults_public_and_the_default_commit_message(tmp_path: Path) -> None:
    api = _Recording(type("Info", (), {"commit_url": "https://hub/c/1"})())
    result = upload_staging(tmp_path, REPO, token="t", api=api)
    assert api.calls[0] == ("create_repo", REPO, {"repo_type": "model", "private": False, "exist_ok": True})
    assert api.calls[1][2]["commit_message"] == "apr publish"
    assert result.to_dict() == {"repo": REPO, "revision": None, "commit_url": "https://hub/c/1"}


@pytest.mark.parametrize(("info", "url"), [
    ("https://huggingface.co/someone/model/commit/abc", "https://huggingface.co/someone/model/commit/abc"),
    (None, None),  # a fake or an old release that returns nothing
])
def test_the_commit_url_from_an_info_without_the_attribute(tmp_path: Path, info, url) -> None:
    """Older huggingface_hub releases return the URL as a plain string from upload_folder."""
    assert upload_staging(tmp_path, REPO, token="t", api=_Recording(info)).commit_url == url
