"""Faults for contract apr-publish-v1 (`apr contracts verify --mutants`): each must turn a test red."""

from __future__ import annotations

from typing import Any


def always_go(path: Any, options: Any, **kwargs: Any) -> Any:
    from apr.qa import file_sha256
    from apr.readiness.gates import ReadinessReport

    return ReadinessReport(model=str(path), sha256=file_sha256(str(path)))  # no gates: nothing failed


def card_without_digest(plan: Any, *, sha256: str, verdict: str) -> str:
    return plan.model_card.read_text(encoding="utf-8")


def copy_nothing(source: Any, target: Any) -> None:
    open(target, "xb").close()


def upload_with_marker(staging: Any, repo: str, *, token: str, revision: Any = None, private: bool = False,
                       commit_message: Any = None, api: Any = None) -> Any:
    import os

    from apr.publish.upload import UploadResult

    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    api.create_repo(repo, repo_type="model", private=private, exist_ok=True)
    if revision is not None:
        api.create_branch(repo, branch=revision, repo_type="model", exist_ok=True)
    api.upload_folder(folder_path=os.fspath(staging), repo_id=repo, repo_type="model", revision=revision,
                      commit_message=commit_message or "apr publish")
    return UploadResult(repo=repo, revision=revision, commit_url=None)


def replace_anything(staging: Any) -> None:
    return None


def upload_nothing(staging: Any, repo: str, **kwargs: Any) -> Any:
    from apr.publish.upload import UploadResult

    return UploadResult(repo=repo, revision=kwargs.get("revision"), commit_url=None)


def explain_nothing(error: Any, repo: str, *, revision: Any, staging: Any) -> Any:
    return None


def every_hub_error_a_refusal(error: Any, repo: str, *, revision: Any, staging: Any) -> Any:
    from apr.errors import HubError

    return HubError(f"could not publish {repo}: {error}", status=None, hint="retry")

