"""The command line: a thin shell that parses options, calls the library and maps errors to exit codes."""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import click

from complaint_triage.cli.common import (
    EXIT_USAGE,
    UsageProblem,
    config_option,
    freeze_startup_heap,
    open_store,
    opened_stores,
    settings_for,
)
from complaint_triage.errors import CaseError, ConfigError, TriageError, UserError

if (
    TYPE_CHECKING
):  # the heavy modules (spaCy, SQLAlchemy, pydantic models, rich) load inside the commands that use them
    from rich.progress import Progress
    from rich.table import Table

    from complaint_triage.records import TriageRecord
    from complaint_triage.settings import Settings
    from complaint_triage.store import Store

EXIT_OK, EXIT_SOME_FAILED, EXIT_RUNTIME = 0, 1, 1
log = logging.getLogger("complaint_triage")


@lru_cache(maxsize=1)
def _stderr():
    """The console progress and summaries go to (rich loads only when something is printed)."""
    from rich.console import Console

    # Off a terminal (a log file, a pipe) a line is one line: rich would wrap it at 80 columns.
    return Console(stderr=True, soft_wrap=not sys.stderr.isatty())


def _triager(settings: Settings):
    from complaint_triage.pipeline.triage import default_triager
    from complaint_triage.resources import model_location

    return default_triager(
        settings.schedule.timezone,
        model_location(settings.pipeline.model_dir),
        settings.pipeline.tables_dir,
        attachments=settings.attachments,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="complaint-triage")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines as text or JSON lines (stderr).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def cli(log_format: str, verbose: bool) -> None:
    """Triage the intellectual-property complaint mail Amazon sellers receive."""
    from complaint_triage.logs import configure_logging

    configure_logging(log_format, logging.DEBUG if verbose else logging.INFO)


def _progress() -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    stderr = _stderr()
    return Progress(
        TextColumn("[bold]triage"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        disable=not stderr.is_terminal,
        transient=True,
    )


def _record_printer(output_format: str, table: Table | None):
    def emit(record: TriageRecord) -> None:
        if output_format == "jsonl":
            sys.stdout.write(json.dumps(record.to_json_dict(), ensure_ascii=False) + "\n")
        elif output_format == "markdown":
            sys.stdout.write(_markdown_row(record) + "\n")
        else:
            table.add_row(
                record.urgency,
                record.kind,
                ", ".join(record.asins) or "-",
                ", ".join(record.complaint_ids) or "-",
                str(record.response_due or "-"),
                record.error or record.subject[:60],
                Path(record.source).name,
            )

    return emit


def _markdown_row(record: TriageRecord) -> str:
    cells = [
        record.urgency,
        record.kind,
        ", ".join(record.asins),
        ", ".join(record.complaint_ids),
        str(record.response_due or ""),
        (record.error or record.subject).replace("|", "\\|"),
    ]
    return "| " + " | ".join(cells) + " |"


def _results_table() -> Table:
    from rich.table import Table

    table = Table(title="Triage results", show_lines=False)
    for column in ("urgency", "kind", "ASINs", "complaint IDs", "respond by", "subject", "file"):
        table.add_column(column)
    return table


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["jsonl", "table", "markdown"]),
    default="jsonl",
    show_default=True,
    help="How records are written to stdout.",
)
@config_option
@click.option("--no-store", is_flag=True, help="Do not write records to the store; only print them.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes that triage in parallel (output order is kept).",
)
def process(
    paths: tuple[str, ...], output_format: str, config: str | None, no_store: bool, workers: int
) -> None:
    """Triage saved mail: .eml files, directories of them (recursive), mbox files and Maildirs."""
    from rich.console import Console

    from complaint_triage.ingest import IngestSummary, ingest
    from complaint_triage.sources import sources_for_path

    settings = settings_for(config)
    try:
        sources = [sources_for_path(path) for path in paths]
    except TriageError as exc:
        raise UsageProblem(str(exc)) from None
    triager = _triager(settings)
    store = None if no_store else open_store(settings)
    freeze_startup_heap()
    table = _results_table() if output_format == "table" else None
    if output_format == "markdown":
        sys.stdout.write(
            "| urgency | kind | ASINs | complaint IDs | respond by | subject |\n|---|---|---|---|---|---|\n"
        )
    emit = _record_printer(output_format, table)
    with _progress() as progress:
        task = progress.add_task("triage", total=None)

        def on_record(record: TriageRecord) -> None:
            emit(record)
            progress.advance(task)

        summary = IngestSummary()
        for source in sources:
            summary.merge(
                ingest(
                    source.fetch_messages(),
                    triager,
                    store,
                    on_record=on_record,
                    settle=source.settle,
                    workers=workers,
                    batch_seconds=settings.store.commit_seconds,
                )
            )
    if table is not None:
        Console(width=None if sys.stdout.isatty() else 200).print(table)
    _say_skipped(sources)
    _finish(summary, store)


def _say_skipped(sources) -> None:
    """One line saying how many files the directories held that were not read, and why."""
    skipped = sum((getattr(source, "skipped", Counter()) for source in sources), Counter())
    if skipped:
        reasons = ", ".join(f"{count} {reason}" for reason, count in skipped.most_common())
        total = sum(skipped.values())
        _stderr().print(
            f"skipped {total} file{'s' if total != 1 else ''}: {reasons}", highlight=False, markup=False
        )


def _finish(summary, store: Store | None) -> None:
    from complaint_triage.store import redact_url

    stderr = _stderr()
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
    from complaint_triage.ingest import ingest

    settings = settings_for(config)
    store = open_store(settings)
    messages = list(store.raw_messages(failed_only=failed_only))
    with _progress() as progress:
        task = progress.add_task("triage", total=len(messages))
        summary = ingest(
            messages,
            _triager(settings),
            store,
            on_record=lambda _r: progress.advance(task),
            batch_seconds=settings.store.commit_seconds,
        )
    _finish(summary, store)


@cli.command()
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["jsonl"]),
    default="jsonl",
    show_default=True,
    help="Output format.",
)
@config_option
def export(output_format: str, config: str | None) -> None:
    """Write every stored record to stdout, one JSON object per line."""
    store = open_store(settings_for(config))
    for record in store.records():
        sys.stdout.write(json.dumps(record.to_json_dict(), ensure_ascii=False) + "\n")


def _report_day(value: str | None, zone: str, rows: list[dict]) -> date:
    from complaint_triage import report as reports

    today = reports.today_in(zone)
    if value in (None, "yesterday"):
        return reports.yesterday_in(zone)
    if value == "today":
        return today
    if value == "latest":
        return reports.latest_day(rows, zone) or today
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageProblem(f"--date must be YYYY-MM-DD, today, yesterday or latest; got {value!r}") from None


@cli.command()
@click.option(
    "--date",
    "day",
    metavar="YYYY-MM-DD",
    help="The day to summarise (default: yesterday; also 'today', 'latest').",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["html", "markdown", "json", "csv"]),
    default="markdown",
    show_default=True,
    help="Output format.",
)
@click.option("--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@config_option
def report(day: str | None, output_format: str, output: str | None, config: str | None) -> None:
    """Write the daily triage summary for one day from the store."""
    from complaint_triage import report as reports

    settings = settings_for(config)
    store = open_store(settings)
    zone = settings.schedule.timezone
    day_wanted = _report_day(day, zone, reports.summary_rows(store.rows()) if day == "latest" else [])
    summary = reports.summary_for_day(store, day_wanted, zone, settings.escalations)
    text = reports.render(summary, output_format)
    if output:
        try:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(
                f"cannot write the summary to {output}: {exc.strerror or exc}"
            ) from None
        click.echo(f"summary written to {Path(output).resolve()}")
    else:
        sys.stdout.write(text)


@cli.command("build-model")
@click.option(
    "--output",
    type=click.Path(file_okay=False),
    help="Directory to write the pipeline into (default: [pipeline] model_dir, else the checkout's models/).",
)
@click.option(
    "--vocabulary-from",
    "vocabulary_from",
    type=click.Path(exists=True, file_okay=False),
    help="First refresh the vocabulary (patterns/vocabulary.txt) from the words that recur in the .eml files under this directory.",
)
@config_option
def build_model_command(output: str | None, vocabulary_from: str | None, config: str | None) -> None:
    """Assemble the spaCy pipeline from the patterns ([pipeline] tables_dir, else config/patterns/) into models/."""
    from complaint_triage.pipeline.nlp.build import build_model, write_vocabulary
    from complaint_triage.resources import shipped_inside_package

    settings = settings_for(config)
    root = output or settings.pipeline.model_dir
    if root is None and shipped_inside_package():
        raise UsageProblem(
            "the pipeline shipped inside the installed package is never rebuilt in place: give --output DIR (and set [pipeline] model_dir = DIR)"
        )
    patterns = Path(settings.pipeline.tables_dir) / "patterns" if settings.pipeline.tables_dir else None
    try:
        if vocabulary_from:
            click.echo(f"vocabulary written to {write_vocabulary(Path(vocabulary_from), patterns)}")
        target = build_model(Path(root) if root else None, patterns)
    except OSError as exc:
        raise click.ClickException(
            f"cannot write the pipeline to {root or 'models/'}: {exc.strerror or exc}"
        ) from None
    click.echo(f"pipeline written to {target}")


@cli.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
@config_option
def evaluate(directory: str, as_json: bool, config: str | None) -> None:
    """Score the pipeline against annotated fixtures (NAME.eml + NAME.expected.json)."""
    from rich.console import Console

    from complaint_triage.evaluate import evaluate as run_evaluation

    result = run_evaluation(Path(directory), _triager(settings_for(config)))
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    from complaint_triage.cli.evaluate import print_evaluation

    print_evaluation(result, Console())


from complaint_triage.cli.cases import register as _register_cases  # noqa: E402
from complaint_triage.cli.init import register as _register_init  # noqa: E402
from complaint_triage.cli.service import register as _register_service  # noqa: E402
from complaint_triage.cli.web import register as _register_web  # noqa: E402

_register_service(cli)
_register_cases(cli)
_register_init(cli)
_register_web(cli)


def main() -> None:
    """Entry point: usage and configuration problems are one line on stderr with exit 2, never a traceback."""
    try:
        cli.main(standalone_mode=False, prog_name="complaint-triage")
        _name_stores()
    except click.exceptions.Exit as exc:
        _name_stores()
        raise SystemExit(exc.exit_code) from None
    except click.Abort:
        _stderr().print("aborted", highlight=False)
        raise SystemExit(130) from None
    except click.ClickException as exc:
        click.echo(f"complaint-triage: error: {exc.format_message()}{_stores_named()}", err=True)
        raise SystemExit(_exit_code(exc)) from None
    except SystemExit:
        _name_stores()
        raise
    except (TriageError, OSError) as exc:
        click.echo(f"complaint-triage: error: {_one_line(exc)}{_stores_named()}", err=True)
        raise SystemExit(_exit_code(exc)) from None
    except Exception as exc:
        if not type(exc).__module__.startswith(("sqlalchemy", "psycopg", "sqlite3")):
            raise  # a bug: its traceback is what a report needs
        click.echo(f"complaint-triage: error: the store failed: {_one_line(exc)}{_stores_named()}", err=True)
        raise SystemExit(EXIT_RUNTIME) from None


def _name_stores() -> None:
    for shown in opened_stores():
        log.info("store: %s", shown)


def _stores_named() -> str:
    named = opened_stores()
    return f" (store: {', '.join(named)})" if named else ""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _exit_code(exc: BaseException) -> int:
    """2 for usage and configuration problems, 1 for everything that failed while running."""
    if isinstance(
        exc, (UsageProblem, ConfigError, CaseError, UserError, click.UsageError, click.BadParameter)
    ):
        return EXIT_USAGE
    return (
        exc.exit_code
        if isinstance(exc, click.ClickException) and exc.exit_code not in (0, 1)
        else EXIT_RUNTIME
    )


if __name__ == "__main__":
    main()
