"""Renderer for ``ragcli tune``: each setting's figures, and what was chosen."""

from __future__ import annotations

from rich.markup import escape

from ragcli.console import streams
from ragcli.console.streams import note, print_json, stdout_is_terminal, write
from ragcli.pipeline.tuning import DEFAULT, Row, TuneReport


def _difference(row: Row) -> str:
    ci = row.against_default
    if row.setting == DEFAULT:
        return ""
    return f"{ci.mean:+.3f} [{ci.low:+.3f}, {ci.high:+.3f}]"


def render_tune(report: TuneReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
        return
    header = ("setting", "nDCG@10", "fit half", "held-out half", "held-out vs default (95% CI)")
    if stdout_is_terminal():
        from rich.table import Table

        table = Table(
            title=f"collection '{report.collection}': {report.questions} "
            f"{'synthetic questions' if report.source == 'synthetic' else 'judged queries'}"
        )
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i == 0 else "right")
        for row in report.rows:
            mark = " *" if row is report.best else ""
            table.add_row(
                escape(row.setting.label) + mark,
                f"{row.ndcg:.4f}",
                f"{row.fit:.4f}",
                f"{row.held_out:.4f}",
                _difference(row),
            )
        streams.out().print(table)
    else:
        write("\t".join(header) + "\n")
        for row in report.rows:
            write(
                f"{row.setting.label}\t{row.ndcg:.4f}\t{row.fit:.4f}\t{row.held_out:.4f}\t"
                f"{_difference(row)}\n"
            )
    best = report.best
    if report.generated:
        note(
            f"wrote {report.generated} question(s), kept {report.generated - report.rejected}; "
            f"all kept in {report.questions_file}"
        )
    if best is None:
        return
    if report.adopted:
        verdict = (
            f"chose '{best.setting.label}': best on the fit half, and {best.held_out:.4f} "
            f"against {report.rows[0].held_out:.4f} for the default on the held-out half"
        )
    elif best.setting == DEFAULT:
        verdict = "kept the default: no setting did better on the fit half"
    else:
        verdict = (
            f"kept the default: '{best.setting.label}' was best on the fit half but did not "
            "beat it beyond noise on the held-out half"
        )
    if report.written:
        note(verdict + ("; written to the collection" if report.adopted else ""))
    else:
        note(verdict + " (dry run: nothing written)")
