"""Publish checks: `apr qa` gates and their verdict record."""

from apr.qa.gate import GateResult, QaReport
from apr.qa.gates import GATES, QaOptions
from apr.qa.runner import file_sha256, run_qa
from apr.qa.throughput import UNIT as THROUGHPUT_UNIT
from apr.qa.throughput import Clocks

__all__ = ["GATES", "THROUGHPUT_UNIT", "Clocks", "GateResult", "QaOptions", "QaReport", "file_sha256", "run_qa"]
