"""The Hub side of `apr publish`: one repository, one commit, through `huggingface_hub`.

What `huggingface_hub` already does (LFS for large files, retries, skipping files whose content
the repository already has) is not written again: `create_repo(exist_ok=True)`, a branch when
``--revision`` names one that does not exist, then `upload_folder` of the staging folder in one
commit. Nothing here runs without a token; `apr publish` calls it last, after the readiness gates
and the staging folder.

What the Hub calls raise becomes our error (`hub_error`): an unreachable Hub or a refused request
is a `HubError` (exit 10), a repository or branch the Hub does not have a `HubNotFoundError`
(exit 11), each saying that the staging folder is kept for a rerun; anything else is not ours to
explain and reaches the CLI's guard as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from apr.errors import AprError, AprIOError, HubError, HubNotFoundError
from apr.publish.staging import MARKER

# The HTTP library's connection and timeout errors, by (module, class) anywhere in the exception's
# MRO: huggingface_hub >= 1 raises httpx's (httpx2 in 2.x), older releases requests'; naming them
# here checks all three without importing any. The builtin ConnectionError and TimeoutError
# (huggingface_hub's OfflineModeIsEnabled, a socket's own) are checked by type.
_TRANSPORT_ERRORS = frozenset({("httpx", "TransportError"), ("httpx2", "TransportError"),
                               ("requests.exceptions", "ConnectionError"), ("requests.exceptions", "Timeout")})


@dataclass(frozen=True, slots=True)
class UploadResult:
    repo: str
    revision: str | None
    commit_url: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"repo": self.repo, "revision": self.revision, "commit_url": self.commit_url}


def hub_token() -> str | None:
    """The token `huggingface_hub` would use (``HF_TOKEN``, or the one `hf auth login` saved)."""
    from huggingface_hub import get_token

    return get_token()


def upload_staging(staging: str | os.PathLike[str], repo: str, *, token: str, revision: str | None = None,
                   private: bool = False, commit_message: str | None = None, api: Any = None) -> UploadResult:
    """Create ``repo`` if needed and commit the staging folder to it (the marker left out)."""
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    try:
        api.create_repo(repo, repo_type="model", private=private, exist_ok=True)
        if revision is not None:
            api.create_branch(repo, branch=revision, repo_type="model", exist_ok=True)
        info = api.upload_folder(folder_path=os.fspath(staging), repo_id=repo, repo_type="model",
                                 revision=revision, commit_message=commit_message or "apr publish",
                                 ignore_patterns=[MARKER])
    except Exception as error:
        ours = hub_error(error, repo, revision=revision, staging=staging)
        if ours is None:
            raise
        raise ours from error
    url = getattr(info, "commit_url", None) or (str(info) if info is not None else None)
    return UploadResult(repo=repo, revision=revision, commit_url=url)


def hub_error(error: BaseException, repo: str, *, revision: str | None,
              staging: str | os.PathLike[str]) -> AprError | None:
    """Our error for what a Hub call raised, or None when it is none of the Hub's (a bug).

    By the HTTP status when the Hub answered (404 or huggingface_hub's not-found classes: exit 11;
    401, 403, 429, 5xx and the rest: exit 10, each with its own fix), a `HubError` when it could
    not be reached, an `AprIOError` when the staging folder could not be read.
    """
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    kept = (f"the staging folder {os.fspath(staging)} is kept: rerun the same command to retry "
            "(the upload skips files the repository already has)")
    target = repo if revision is None else f"{repo} (branch {revision})"
    if isinstance(error, HfHubHTTPError):
        status = getattr(getattr(error, "response", None), "status_code", None)
        said = getattr(error, "server_message", None) or str(error).partition("\n")[0]
        if isinstance(error, (RepositoryNotFoundError, RevisionNotFoundError)) or status == 404:
            return HubNotFoundError(
                f"the Hub has no {target}, or the token cannot see it: {said}", status=status, field="REPO",
                hint=f"check OWNER/NAME and --revision; the owner (user or organisation) must exist; {kept}")
        if status == 401:
            fix = "the token was refused: run `hf auth login` or set HF_TOKEN to a valid token"
        elif status == 403:
            fix = f"the token cannot write to {repo.split('/')[0]}: use a token with write access to it"
        elif status == 429 or (isinstance(status, int) and status >= 500):
            fix = "the Hub is busy or failing: wait a few minutes"
        else:
            fix = "read the Hub's answer above"
        answered = "the Hub refused it" if status is None else f"the Hub answered HTTP {status}"
        return HubError(f"could not publish {target}: {answered}: {said}", status=status, hint=f"{fix}; {kept}")
    if isinstance(error, (ConnectionError, TimeoutError)) or any(
            (cls.__module__, cls.__qualname__) in _TRANSPORT_ERRORS for cls in type(error).__mro__):
        return HubError(f"cannot reach the Hugging Face Hub to publish {target}: {error}",
                        hint=f"check the network connection (and HF_ENDPOINT, a proxy, HF_HUB_OFFLINE); {kept}")
    if isinstance(error, OSError):  # reading the staging folder: the disk's error, not the Hub's
        return AprIOError.from_os_error(error, action="read", note=kept)
    return None


__all__ = ["UploadResult", "hub_error", "hub_token", "upload_staging"]
