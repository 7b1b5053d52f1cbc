"""Plain-text tables and JSON for the converter's reports (check findings, verify errors, summaries)."""
import json
import textwrap


def format_table(headers, rows, max_width=None):
    """A left-aligned text table; cells longer than `max_width` (per column, or None) wrap onto more lines."""
    rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in rows:
        for column, cell in enumerate(row):
            widths[column] = max(widths[column], len(cell))
    if max_width:
        widths = [min(width, max_width) for width in widths]
    lines = [_join_cells(headers, widths), _join_cells(["-" * width for width in widths], widths)]
    for row in rows:
        wrapped = [textwrap.wrap(cell, width) or [""] for cell, width in zip(row, widths)]
        for line in range(max(len(cell) for cell in wrapped)):
            lines.append(_join_cells([cell[line] if line < len(cell) else "" for cell in wrapped], widths))
    return "\n".join(lines)


def _join_cells(cells, widths):
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()


def check_table(report):
    """The findings of a CheckReport as a table plus a one-line verdict."""
    target = report.target
    verdict = "PASS" if report.passed else "FAIL"
    head = "check --target {} ({}): {} - {} error(s), {} warning(s), opset {}".format(
        target.name, target.description, verdict, len(report.errors), len(report.findings) - len(report.errors),
        report.opset)
    if not report.findings:
        return head
    rows = [(finding.severity, finding.node, finding.op, finding.rule, finding.why, finding.remedy())
            for finding in report.findings]
    return head + "\n" + format_table(["", "node", "op", "rule", "why", "fix / what to change"], rows, max_width=60)


def verify_table(result):
    """Per-output errors of a VerifyResult."""
    rows = [(row.name, "x".join(str(dim) for dim in row.shape), "{:.3g}".format(row.max_abs),
             "{:.3g}".format(row.max_rel), "ok" if row.ok else "FAIL") for row in result.outputs]
    head = "verify ({} input set(s), tolerance abs {:g} / rel {:g}): {}".format(
        result.runs, result.atol, result.rtol, "PASS" if result.passed else "FAIL")
    return head + "\n" + format_table(["output", "shape", "max abs err", "max rel err", ""], rows)


def summary_table(steps):
    """`all`: one row per step, each a (step, status, detail) triple."""
    return format_table(["step", "status", "detail"], steps, max_width=90)


def to_json(data):
    return json.dumps(data, indent=2, sort_keys=True, default=str)
