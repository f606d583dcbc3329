"""Publish checks: `apr qa` gates and their verdict record."""

from apr.qa.gate import GateResult, QaReport
from apr.qa.gates import GATES, QaOptions
from apr.qa.runner import file_sha256, run_qa

__all__ = ["GATES", "GateResult", "QaOptions", "QaReport", "file_sha256", "run_qa"]
