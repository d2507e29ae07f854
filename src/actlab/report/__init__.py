"""The report: a self-contained HTML page per run directory (`page`), built from the store alone, with its
tables (`tables`), generated findings (`findings`) and figures (`figures/`)."""

from actlab.report.page import build_report

__all__ = ["build_report"]
