"""The run report: one self-contained HTML file (`report.html`) per run folder."""

from ladder.report.html import render_report

__all__ = ["render_report"]
