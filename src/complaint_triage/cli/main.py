"""The command line: a thin shell that parses options, calls the library and maps errors to exit codes."""

from __future__ import annotations

import json
import logging
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from complaint_triage import report as reports
from complaint_triage.cli.common import EXIT_USAGE, UsageProblem, config_option, freeze_startup_heap, settings_for
from complaint_triage.errors import TriageError
from complaint_triage.evaluate import evaluate as run_evaluation
from complaint_triage.ingest import IngestSummary, ingest
from complaint_triage.records import TriageRecord
from complaint_triage.pipeline.triage import default_triager
from complaint_triage.settings import Settings
from complaint_triage.sources import sources_for_path
from complaint_triage.store import Store, redact_url

EXIT_OK, EXIT_SOME_FAILED = 0, 1
stderr = Console(stderr=True)
log = logging.getLogger("complaint_triage")


def _triager(settings: Settings):
    return default_triager(settings.schedule.timezone)




@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="complaint-triage")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Log lines as text or JSON lines (stderr).")
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def cli(log_format: str, verbose: bool) -> None:
    """Triage the intellectual-property complaint mail Amazon sellers receive."""
    from complaint_triage.logs import configure_logging

    configure_logging(log_format, logging.DEBUG if verbose else logging.INFO)


def _progress() -> Progress:
    return Progress(TextColumn("[bold]triage"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=stderr, disable=not stderr.is_terminal, transient=True)


def _record_printer(output_format: str, table: Table | None):
    def emit(record: TriageRecord) -> None:
        if output_format == "jsonl":
            sys.stdout.write(json.dumps(record.to_json_dict(), ensure_ascii=False) + "\n")
        elif output_format == "markdown":
            sys.stdout.write(_markdown_row(record) + "\n")
        else:
            table.add_row(record.urgency, record.kind, ", ".join(record.asins) or "-", ", ".join(record.complaint_ids) or "-", str(record.response_due or "-"), record.error or record.subject[:60], Path(record.source).name)

    return emit


def _markdown_row(record: TriageRecord) -> str:
    cells = [record.urgency, record.kind, ", ".join(record.asins), ", ".join(record.complaint_ids), str(record.response_due or ""), (record.error or record.subject).replace("|", "\\|")]
    return "| " + " | ".join(cells) + " |"


def _results_table() -> Table:
    table = Table(title="Triage results", show_lines=False)
    for column in ("urgency", "kind", "ASINs", "complaint IDs", "respond by", "subject", "file"):
        table.add_column(column)
    return table


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "output_format", type=click.Choice(["jsonl", "table", "markdown"]), default="jsonl", show_default=True, help="How records are written to stdout.")
@config_option
@click.option("--no-store", is_flag=True, help="Do not write records to the store; only print them.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Processes that triage in parallel (output order is kept).")
def process(paths: tuple[str, ...], output_format: str, config: str | None, no_store: bool, workers: int) -> None:
    """Triage saved mail: .eml files, directories of them (recursive), mbox files and Maildirs."""
    settings = settings_for(config)
    try:
        sources = [sources_for_path(path) for path in paths]
    except TriageError as exc:
        raise UsageProblem(str(exc)) from None
    triager = _triager(settings)
    store = None if no_store else Store(settings.store.url)
    freeze_startup_heap()
    table = _results_table() if output_format == "table" else None
    if output_format == "markdown":
        sys.stdout.write("| urgency | kind | ASINs | complaint IDs | respond by | subject |\n|---|---|---|---|---|---|\n")
    emit = _record_printer(output_format, table)
    with _progress() as progress:
        task = progress.add_task("triage", total=None)

        def on_record(record: TriageRecord) -> None:
            emit(record)
            progress.advance(task)

        summary = IngestSummary()
        for source in sources:
            summary.merge(ingest(source.fetch_messages(), triager, store, on_record=on_record, settle=source.settle, workers=workers,
                                 batch_seconds=settings.store.commit_seconds))
    if table is not None:
        Console(width=None if sys.stdout.isatty() else 200).print(table)
    _finish(summary, store)


def _finish(summary, store: Store | None) -> None:
    where = f", stored in {redact_url(store.url)}" if store else ""
    stderr.print(f"{summary.triaged} triaged, {summary.failed} failed{where}", highlight=False)
    for failure in summary.failures:
        stderr.print(f"  failed: {failure}", highlight=False, markup=False)
    if summary.failed:
        raise SystemExit(EXIT_SOME_FAILED)


@cli.command()
@config_option
@click.option("--failed-only", is_flag=True, help="Replay only the messages whose triage failed.")
def reprocess(config: str | None, failed_only: bool) -> None:
    """Re-triage every stored message from its kept raw bytes (after a pattern change)."""
    settings = settings_for(config)
    store = Store(settings.store.url)
    messages = list(store.raw_messages(failed_only=failed_only))
    with _progress() as progress:
        task = progress.add_task("triage", total=len(messages))
        summary = ingest(messages, _triager(settings), store, on_record=lambda _r: progress.advance(task), batch_seconds=settings.store.commit_seconds)
    _finish(summary, store)


@cli.command()
@click.option("--format", "output_format", type=click.Choice(["jsonl"]), default="jsonl", show_default=True, help="Output format.")
@config_option
def export(output_format: str, config: str | None) -> None:
    """Write every stored record to stdout, one JSON object per line."""
    store = Store(settings_for(config).store.url)
    for record in store.records():
        sys.stdout.write(json.dumps(record.to_json_dict(), ensure_ascii=False) + "\n")


def _report_day(value: str | None, zone: str, rows: list[dict]) -> date:
    today = datetime.now(ZoneInfo(zone)).date()
    if value in (None, "yesterday"):
        return today - timedelta(days=1)
    if value == "today":
        return today
    if value == "latest":
        return reports.latest_day(rows, zone) or today
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageProblem(f"--date must be YYYY-MM-DD, today, yesterday or latest; got {value!r}") from None


@cli.command()
@click.option("--date", "day", metavar="YYYY-MM-DD", help="The day to summarise (default: yesterday; also 'today', 'latest').")
@click.option("--format", "output_format", type=click.Choice(["html", "markdown", "json", "csv"]), default="markdown", show_default=True, help="Output format.")
@click.option("--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@config_option
def report(day: str | None, output_format: str, output: str | None, config: str | None) -> None:
    """Write the daily triage summary for one day from the store."""
    settings = settings_for(config)
    store = Store(settings.store.url)
    zone = settings.schedule.timezone
    day_wanted = _report_day(day, zone, reports.summary_rows(store.rows()) if day == "latest" else [])
    summary = reports.summary_for_day(store, day_wanted, zone, settings.escalations)
    text = reports.render(summary, output_format)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"summary written to {Path(output).resolve()}")
    else:
        sys.stdout.write(text)


@cli.command("build-model")
@click.option("--output", type=click.Path(file_okay=False), help="Directory to write the pipeline into (default: the models/ directory in use).")
def build_model_command(output: str | None) -> None:
    """Assemble the spaCy pipeline from config/patterns/ into models/."""
    from complaint_triage.pipeline.nlp.build import build_model

    target = build_model(Path(output) if output else None)
    click.echo(f"pipeline written to {target}")


@cli.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
@config_option
def evaluate(directory: str, as_json: bool, config: str | None) -> None:
    """Score the pipeline against annotated fixtures (NAME.eml + NAME.expected.json)."""
    result = run_evaluation(Path(directory), _triager(settings_for(config)))
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    from complaint_triage.cli.evaluate import print_evaluation

    print_evaluation(result, Console())


from complaint_triage.cli.cases import register as _register_cases  # noqa: E402
from complaint_triage.cli.service import register as _register_service  # noqa: E402
from complaint_triage.cli.web import register as _register_web  # noqa: E402

_register_service(cli)
_register_cases(cli)
_register_web(cli)


def main() -> None:
    """Entry point: usage and configuration problems are one line on stderr with exit 2, never a traceback."""
    try:
        cli.main(standalone_mode=False, prog_name="complaint-triage")
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except click.Abort:
        stderr.print("aborted", highlight=False)
        raise SystemExit(130) from None
    except click.ClickException as exc:
        click.echo(f"complaint-triage: error: {exc.format_message()}", err=True)
        raise SystemExit(exc.exit_code if isinstance(exc, UsageProblem) else EXIT_USAGE) from None
    except TriageError as exc:
        click.echo(f"complaint-triage: error: {str(exc).splitlines()[0]}", err=True)
        raise SystemExit(EXIT_USAGE) from None


if __name__ == "__main__":
    main()
