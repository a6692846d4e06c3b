"""A one-file HTML summary of the validation reports that renders anywhere, offline included: Great
Expectations' own Data Docs index builds its table with JavaScript fetched from CDNs, and shows
nothing without them."""

from __future__ import annotations

from html import escape

from emotion_ai.data.validation import ValidationReport

SUMMARY_FILE = "summary.html"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin-bottom: 2rem; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 0.35rem 0.6rem; text-align: left; }
.passed { color: #1a7f37; } .failed { color: #cf222e; font-weight: bold; }
"""


def summary_html(reports: list[ValidationReport]) -> str:
    """Each suite's file, counts and every expectation with its outcome; no scripts, no assets."""
    failed = sum(report.evaluated - report.passed for report in reports)
    verdict = "all expectations passed" if not failed else f"{failed} expectation(s) failed"
    sections = "\n".join(_suite_section(report) for report in reports)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Data validation: {verdict}</title><style>{STYLE}</style></head><body>"
        f"<h1>Data validation: {verdict}</h1>"
        "<p>Great Expectations suites run by emotion-ai's validate step. The full Data Docs are "
        'in <a href="index.html">index.html</a> beside this page (it needs internet access to '
        f"render).</p>{sections}</body></html>\n"
    )


def _suite_section(report: ValidationReport) -> str:
    state = "passed" if report.success else "failed"
    rows = "".join(
        f'<tr><td class="{"passed" if passed else "failed"}">{"✓" if passed else "✗"}</td>'
        f"<td>{escape(text)}</td></tr>"
        for passed, text in report.outcomes
    )
    return (
        f'<h2>{escape(report.suite)} <span class="{state}">{state}</span></h2>'
        f"<p>{escape(report.source)}: {report.passed} of {report.evaluated} expectations "
        f"passed</p><table><tr><th></th><th>expectation</th></tr>{rows}</table>"
        + _set_aside_section(report)
    )


def _set_aside_section(report: ValidationReport) -> str:
    """The rows the suite set aside, each with the expectations it failed."""
    if not report.set_aside:
        return ""
    rows = "".join(
        f"<tr><td>{row}</td><td>{escape('; '.join(why))}</td></tr>"
        for row, why in report.set_aside.items()
    )
    return (
        f"<h3>{len(report.set_aside)} row(s) set aside</h3>"
        f"<table><tr><th>file row</th><th>why</th></tr>{rows}</table>"
    )
