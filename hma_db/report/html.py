"""The report as one self-contained HTML file: plotly.js inline once, no network access.

Layout: a summary (overall score, properties, validity and privacy, each passed or failed
against its threshold), one section per table (its scores and, for every scored column, real
and synthetic distributions overlaid), the children-per-parent distribution of every
relationship, then the privacy and validity findings. Every column plot sits in a
``div.column-plot``, every relationship plot in a ``div.cardinality-plot``.
"""

from __future__ import annotations

import html
import math

import plotly.io as pio

REAL, SYNTHETIC = "#1f3b73", "#f28e2b"
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1, h2, h3 { font-weight: 600; } table { border-collapse: collapse; margin: .5rem 0 1rem; }
td, th { border: 1px solid #ccc; padding: .25rem .6rem; text-align: left; font-size: .9rem; }
.pass { color: #1a7f37; font-weight: 600; } .fail { color: #c62828; font-weight: 600; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: 1rem; }
.note { color: #555; font-size: .9rem; }
"""


def _e(value) -> str:
    return html.escape(str(value))


def _fmt(value) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _verdict(passed: bool) -> str:
    return '<span class="pass">passed</span>' if passed else '<span class="fail">failed</span>'


def _table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return '<p class="note">Nothing to show.</p>'
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(_fmt(r.get(c, '')))}</td>" for c in columns)
                   + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


class _Figures:
    """Turns figures into divs; the first one carries plotly.js inline."""

    def __init__(self) -> None:
        self.count = 0

    def div(self, figure: dict, kind: str) -> str:
        self.count += 1
        figure["layout"].update(height=360, margin={"t": 50, "l": 50, "r": 20, "b": 60},
                                plot_bgcolor="white")
        # plain dicts, not validated graph objects: ten times faster for the same output
        inner = pio.to_html(figure, full_html=False, include_plotlyjs=self.count == 1,
                            div_id=f"plot-{self.count}", config={"displaylogo": False},
                            validate=False)
        return f'<div class="plot {kind}">{inner}</div>'


def _overlay(title: str, x: list, real: list, synthetic: list, width=None, x_title="",
             y_title="share of rows") -> dict:
    bars = [{"type": "bar", "x": x, "y": y, "name": name, "marker": {"color": color},
             "opacity": 0.65, **({"width": width} if width else {})}
            for y, name, color in ((real, "real", REAL), (synthetic, "synthetic", SYNTHETIC))]
    return {"data": bars, "layout": {
        "title": {"text": title}, "barmode": "overlay" if width else "group",
        "yaxis": {"title": {"text": y_title}}, "xaxis": {"title": {"text": x_title}}}}


def _summary(report, figures: _Figures) -> str:
    t = report.thresholds
    rows = [{"property": "Overall score", "score": report.score, "threshold": t["score"],
             "result": report.score >= t["score"] if not math.isnan(report.score) else False}]
    rows += [{"property": name, "score": value, "threshold": t.get(name, float("nan")),
              "result": (not math.isnan(value)) and value >= t.get(name, 0)}
             for name, value in report.properties.items()]
    body = "".join(f"<tr><td>{_e(r['property'])}</td><td>{_fmt(r['score'])}</td>"
                   f"<td>{_fmt(r['threshold'])}</td><td>{_verdict(r['result'])}</td></tr>"
                   for r in rows)
    names = list(report.properties)
    values = [None if math.isnan(report.properties[n]) else report.properties[n] for n in names]
    chart = {"data": [{"type": "bar", "x": names, "y": values, "marker": {"color": REAL}}],
             "layout": {"title": {"text": "Fidelity by property (SDMetrics' definitions)"},
                        "yaxis": {"range": [0, 1]}}}
    return (f"<h2>Summary</h2><p>Overall fidelity score <b>{_fmt(report.score)}</b> "
            f"{_verdict(rows[0]['result'])}; validity {_verdict(report.validity_passed)}; "
            f"privacy {_verdict(report.privacy_passed)}.</p>"
            f"<table><tr><th>property</th><th>score</th><th>threshold</th><th>result</th></tr>"
            f"{body}</table>{figures.div(chart, 'summary-plot')}")


def _table_section(report, table: str, figures: _Figures) -> str:
    rows = report.rows.get(table, {})
    scores = report.table_scores.get(table, {})
    parts = [f'<section class="table" id="table-{_e(table)}"><h3>{_e(table)}</h3>',
             f"<p>{rows.get('real', 0)} real rows, {rows.get('synthetic', 0)} synthetic rows. "
             + "; ".join(f"{_e(k)} {_fmt(v)}" for k, v in scores.items()) + "</p>"]
    plots = []
    for column, data in report.distributions.get("columns", {}).get(table, {}).items():
        figure = _overlay(f"{table}.{column} ({data['sdtype']})", data["x"], data["real"],
                          data["synthetic"], data.get("width"))
        plots.append(figures.div(figure, "column-plot"))
    parts += [f'<p class="note">{_e(table)}.{_e(column)}: {_e(note)}</p>'
              for column, note in _notes(report, table)]
    if plots:
        parts.append('<div class="plots">' + "".join(plots) + "</div>")
    else:
        parts.append('<p class="note">No modeled column to plot (keys, personal data and '
                     "generated text only).</p>")
    return "".join(parts) + "</section>"


def _notes(report, table: str) -> list[tuple[str, str]]:
    """(column, note) of the table's Column Shapes rows whose values were partly skipped."""
    shapes = report.details.get("Column Shapes")
    if shapes is None or "Note" not in shapes:
        return []
    rows = shapes[(shapes["Table"] == table) & shapes["Note"].notna()]
    return list(zip(rows["Column"], rows["Note"], strict=True))


def _cardinality_section(report, figures: _Figures) -> str:
    plots = []
    for data in report.distributions.get("cardinality", []):
        figure = _overlay(f"Children per parent: {data['relationship']}", data["x"], data["real"],
                          data["synthetic"], width=0.9,
                          x_title=f"children (last bar: {data['capped_at']} or more)",
                          y_title="share of parents")
        plots.append(figures.div(figure, "cardinality-plot"))
    details = report.details["Cardinality"].to_dict(orient="records")
    return ("<h2>Relationships</h2>"
            + _table(details, ["Child Table", "Foreign Key", "Parent Table", "Score"])
            + '<div class="plots">' + "".join(plots) + "</div>")


def _privacy_section(report) -> str:
    p = report.privacy
    return (f"<h2>Privacy {_verdict(report.privacy_passed)}</h2>"
            '<p class="note">A finding is flagged when it is too frequent for chance (binomial '
            "tail below 0.001 at the chance share); no real value is shown.</p>"
            + (f'<p class="note">Copied as they are by their table policy (reference tables), '
               f"not checked: {html.escape(', '.join(p['copied_by_policy']))}.</p>"
               if p.get("copied_by_policy") else "")
            + "<h3>Personal data: synthetic values equal to a real value</h3>"
            + _table(p.get("personal_data", []), ["table", "column", "sdtype", "synthetic_values",
                                                   "matches", "match_share", "chance_share",
                                                   "flagged"])
            + "<h3>Identities: all personal values of a real row</h3>"
            + _table(p.get("identities", []), ["table", "columns", "matches", "chance_share",
                                                "flagged"])
            + "<h3>Copied rows: all non-key columns of a real row</h3>"
            + _table(p.get("copied_rows", []), ["table", "rows", "copies", "copy_share",
                                                 "chance_share", "flagged"])
            + "<h3>Distance to closest record (real train half vs holdout half)</h3>"
            + _table(p.get("dcr", []), ["table", "rows", "synthetic_median", "holdout_median",
                                         "close_share", "expected_share", "flagged"])
            + "<h3>Rare categories in the output</h3>"
            + _table(p.get("rare_categories", []), ["table", "column", "rare_categories", "rows",
                                                     "flagged"]))


def _validity_section(report) -> str:
    failed = [f for f in report.validity if not f["passed"]]
    return (f"<h2>Validity {_verdict(report.validity_passed)}</h2>"
            f"<p>{len(report.validity)} checks, {len(failed)} failed.</p>"
            + _table(failed + [f for f in report.validity if f["passed"]],
                     ["table", "columns", "check", "violations", "rows", "passed"]
                     + (["note"] if any(f.get("note") for f in report.validity) else [])))


def render(report) -> str:
    """The whole HTML document of a :class:`~hma_db.report.result.Report` (which calls this)."""
    figures = _Figures()
    body = [_summary(report, figures), "<h2>Tables</h2>"]
    body += [_table_section(report, table, figures) for table in report.rows]
    body += [_cardinality_section(report, figures), _privacy_section(report),
             _validity_section(report)]
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>hma_db quality and privacy report</title>"
            f"<style>{_STYLE}</style></head><body><h1>Quality and privacy report</h1>"
            + "".join(body) + "</body></html>")
