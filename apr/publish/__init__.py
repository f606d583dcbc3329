"""`apr publish`: the seed workflow's last step. Readiness first, then a staging folder laid out as
the Hub repository will be, then one commit through `huggingface_hub` (or, without a token or with
``--dry-run``, the list of operations it would commit).

Modules: `staging` (gate, build and describe the folder; offline), `upload` (the Hub calls).
"""

from apr.publish.staging import (
    FORMATS,
    PublishPlan,
    PublishRefused,
    StagedFile,
    build_staging,
    check_repo_id,
    plan_publish,
)
from apr.publish.upload import UploadResult, upload_staging

__all__ = [
    "FORMATS",
    "PublishPlan",
    "PublishRefused",
    "StagedFile",
    "UploadResult",
    "build_staging",
    "check_repo_id",
    "plan_publish",
    "upload_staging",
]
