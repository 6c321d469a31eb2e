"""`borderpost watchlist`: import a watchlist CSV file (with portraits) and export one.

Exit codes of `watchlist import`: 0 every row imported (or unchanged); 1 the file was
processed but some rows were rejected (the good rows are imported, the rejected lines are
listed); 2 nothing was written: the file was refused as a whole (encoding, header, CSV
syntax) or the database is not migrated. The progress bar goes to stderr, the report to
stdout. A running server picks the new versions up at its next watchlist refresh.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from registry.cli.helpers import build_node, run_on_node
from registry.migrate import SchemaNotCurrent, ensure_schema_current
from registry.watchlists.csv_files import (
    ImportReport,
    WatchlistFileRefused,
    export_watchlist_csv,
    import_watchlist_csv,
)

EXIT_REJECTED_ROWS = 1
EXIT_FILE_REFUSED = 2


@click.group()
def watchlist() -> None:
    """Watchlists: import and export CSV files."""


def _print_report(report: ImportReport) -> None:
    click.echo(
        f"{report.file}: {report.total} rows: imported {report.imported}, "
        f"updated {report.updated}, unchanged {report.unchanged}, "
        f"rejected {len(report.rejected)}"
    )
    for line, reason in report.rejected:
        click.echo(f"  line {line}: {reason}")


@watchlist.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--photos",
    "photos_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="directory holding the files named in the `photo` column",
)
def watchlist_import(csv_file: Path, photos_dir: Path | None) -> None:
    """Import FILE.csv: new entries, new versions of changed ones, rejected lines listed."""
    node = build_node()
    columns = (TextColumn("checking rows"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("rows", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        async def work() -> ImportReport:
            await ensure_schema_current(node.db.engine)
            return await import_watchlist_csv(
                node, csv_file, photos_dir=photos_dir, progress=progress
            )

        try:
            report = run_on_node(node, work)
        except (WatchlistFileRefused, SchemaNotCurrent) as exc:
            click.echo(f"{csv_file.name} refused, nothing imported: {exc}", err=True)
            sys.exit(EXIT_FILE_REFUSED)
    _print_report(report)
    sys.exit(EXIT_REJECTED_ROWS if report.rejected else 0)


@watchlist.command("export")
@click.argument("csv_file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def watchlist_export(csv_file: Path) -> None:
    """Export the current active entries to FILE.csv (UTF-8; face templates are not exported)."""
    node = build_node()

    async def work() -> int:
        await ensure_schema_current(node.db.engine)
        async with node.db.write_transaction() as session:
            return await export_watchlist_csv(session, csv_file, node=node)

    try:
        exported = run_on_node(node, work)
    except SchemaNotCurrent as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_FILE_REFUSED)
    click.echo(f"exported {exported} entries to {csv_file}")
