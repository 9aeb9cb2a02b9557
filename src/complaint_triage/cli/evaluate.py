"""Show an Evaluation as tables in the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from complaint_triage.evaluate import Evaluation


def _confusion(title: str, matrix: dict[str, dict[str, int]]) -> Table:
    used = [
        name for name in matrix if sum(matrix[name].values()) or any(row.get(name) for row in matrix.values())
    ]
    table = Table(title=f"{title} (rows: expected, columns: got)")
    table.add_column("")
    for name in used:
        table.add_column(name[:12], justify="right")
    for name in used:
        table.add_row(name, *(str(matrix[name][other]) for other in used))
    return table


def print_evaluation(result: Evaluation, console: Console) -> None:
    """Per-field precision/recall/F1, accuracies, confusion matrices, then each disagreement."""
    fields = Table(title=f"Fields over {result.files} fixtures")
    for column in ("field", "precision", "recall", "F1", "tp", "fp", "fn"):
        fields.add_column(column, justify="left" if column == "field" else "right")
    for name, score in result.fields.items():
        fields.add_row(
            name,
            f"{score.precision:.3f}",
            f"{score.recall:.3f}",
            f"{score.f1:.3f}",
            str(score.true_positives),
            str(score.false_positives),
            str(score.false_negatives),
        )
    for name, accuracy in result.accuracy.items():
        fields.add_row(f"{name} (accuracy)", "", "", f"{accuracy:.3f}", "", "", "")
    console.print(fields)
    console.print(
        f"is_complaint: {result.is_complaint_false_positives} false positives, {result.is_complaint_false_negatives} false negatives"
    )
    console.print(
        f"complaints: precision {result.complaint.precision:.3f}, recall {result.complaint.recall:.3f}; silent misses (complaint rated low, no review): {len(result.silent_misses)}"
    )
    for name in result.silent_misses:
        console.print(f"  silent miss: {name}")
    console.print(_confusion("urgency", result.urgency_confusion))
    console.print(_confusion("kind", result.kind_confusion))
    if result.disagreements:
        table = Table(title=f"{len(result.disagreements)} disagreements")
        for column in ("file", "field", "expected", "got"):
            table.add_column(column, overflow="fold")
        for item in result.disagreements:
            table.add_row(item.file, item.field, str(item.expected), str(item.got))
        console.print(table)
    for error in result.errors:
        console.print(f"[red]error[/red] {error}", markup=True, highlight=False)
