"""The Hub side of `apr publish`: one repository, one commit, through `huggingface_hub`.

What `huggingface_hub` already does (LFS for large files, retries, skipping files whose content
the repository already has) is not written again: `create_repo(exist_ok=True)`, a branch when
``--revision`` names one that does not exist, then `upload_folder` of the staging folder in one
commit. Nothing here runs without a token; `apr publish` calls it last, after the readiness gates
and the staging folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from apr.publish.staging import MARKER


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
    api.create_repo(repo, repo_type="model", private=private, exist_ok=True)
    if revision is not None:
        api.create_branch(repo, branch=revision, repo_type="model", exist_ok=True)
    info = api.upload_folder(folder_path=os.fspath(staging), repo_id=repo, repo_type="model", revision=revision,
                             commit_message=commit_message or "apr publish", ignore_patterns=[MARKER])
    url = getattr(info, "commit_url", None) or (str(info) if info is not None else None)
    return UploadResult(repo=repo, revision=revision, commit_url=url)


__all__ = ["UploadResult", "hub_token", "upload_staging"]
