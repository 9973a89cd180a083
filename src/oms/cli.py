"""The `oms` command."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from oms import logs
from oms.adapters.db.engine import make_engine
from oms.adapters.db.migrate import upgrade
from oms.adapters.db.unit_of_work import UnitOfWork
from oms.domain.access import Role
from oms.domain.errors import DomainError
from oms.services import apikeys, webhooks
from oms.services.import_runs import Sender
from oms.services.imports import (
    FileFormat,
    ImportFile,
    ImportInterrupted,
    ImportMode,
    guess_format,
    run_import,
)
from oms.services.order_imports import import_orders
from oms.settings import get_settings

app = typer.Typer(help="oms: omnichannel order management.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")
webhooks_app = typer.Typer(help="Webhook subscriptions and their deliveries.",
                           no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")
console = Console()
err = Console(stderr=True)


def print_table(headers: list[str], rows: list[list[str]], whole: int = 1) -> None:
    """A table whose first `whole` columns (the ids other commands take) are never cut,
    however narrow the terminal: the other columns wrap instead."""
    table = Table()
    for n, header in enumerate(headers):
        if n < whole:
            widest = max((len(row[n]) for row in rows), default=len(header))
            table.add_column(header, no_wrap=True, min_width=max(widest, len(header)))
        else:
            table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    with_worker: Annotated[bool, typer.Option(
        "--with-worker", help="Also run the background work (`oms worker`) in this process, "
                              "for development and demos")] = False,
) -> None:
    """Serve the API (OpenAPI at /docs)."""
    import threading

    import uvicorn

    from oms import worker as background

    settings = get_settings()
    logs.configure(settings)
    stop = threading.Event()
    if with_worker:
        background.start(make_engine(settings), settings, 30.0, stop)
    console.print(f"oms API on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    try:
        # The app writes its own access log (oms.access), without query strings.
        uvicorn.run("oms.api.app:create_app", factory=True, host=host, port=port,
                    workers=workers, log_config=logs.logging_config(settings),
                    access_log=False)
    finally:
        stop.set()


@app.command()
def worker(
    interval: Annotated[float, typer.Option(help="Seconds between passes")] = 30.0,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit")] = False,
) -> None:
    """Run the background work: pre-orders onto stock, orders on hold routed again, DCs and
    3PLs told of their requests, uncollected pickups expired."""
    from oms.worker import run

    settings = get_settings()
    logs.configure(settings)
    run(make_engine(settings), settings, interval, once)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    url = get_settings().database_url
    upgrade(url)
    console.print("database is up to date")


@apikey_app.command("create")
def apikey_create(
    role: Annotated[Role, typer.Option(help="admin, integrator, manager or associate")],
    location: Annotated[
        list[str] | None, typer.Option(help="A location the key acts at (manager, associate)")
    ] = None,
    name: Annotated[str, typer.Option(help="What the key is for")] = "",
) -> None:
    """Make an API key. It is printed once and never stored in plain text."""
    engine = make_engine(get_settings())
    try:
        with UnitOfWork(engine) as uow:
            record, key = apikeys.create_key(uow, role, location or [], name or role.value)
    except DomainError as exc:
        err.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(2) from exc
    err.print(f"created {record.role} key {record.id} ({record.prefix}…); it is shown once:")
    typer.echo(key)


@apikey_app.command("list")
def apikey_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines")] = False,
) -> None:
    """List API keys (never the keys themselves)."""
    engine = make_engine(get_settings())
    with UnitOfWork(engine, read_only=True) as uow:
        records = uow.api_keys.all()
    if as_json:
        for r in records:
            typer.echo(json.dumps({
                "id": r.id, "name": r.name, "role": r.role, "locations": list(r.location_ids),
                "prefix": r.prefix, "created_at": r.created_at.isoformat(),
                "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None}))
        return
    print_table(["id", "name", "role", "locations", "prefix", "created", "revoked"],
                [[r.id, r.name, r.role, ", ".join(r.location_ids), r.prefix,
                  r.created_at.isoformat(timespec="seconds"),
                  r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else ""]
                 for r in records])


@apikey_app.command("revoke")
def apikey_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (see list)")]) -> None:
    """Revoke an API key: it is refused from the next request on."""
    engine = make_engine(get_settings())
    try:
        with UnitOfWork(engine) as uow:
            apikeys.revoke_key(uow, key_id)
    except DomainError as exc:
        err.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(2) from exc
    console.print(f"revoked {key_id}")


@webhooks_app.command("list")
def webhooks_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines")] = False,
) -> None:
    """List webhook subscriptions (never their secrets)."""
    engine = make_engine(get_settings())
    with UnitOfWork(engine, read_only=True) as uow:
        rows = [webhooks.subscription_out(r) for r in uow.webhooks.page(after=None,
                                                                          limit=10_000)]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    print_table(["id", "url", "event types", "status", "description"],
                [[row["id"], row["url"], ", ".join(row["event_types"]),
                  row["status"] + (f" ({row['disabled_reason']})" if row["disabled_reason"]
                                   else ""),
                  row["description"] or ""] for row in rows])


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    subscription_id: Annotated[str, typer.Argument(help="The subscription's id")],
    status: Annotated[str | None, typer.Option(help="pending, delivered or failed")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest event first")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines")] = False,
) -> None:
    """A subscription's deliveries with their attempts."""
    engine = make_engine(get_settings())
    try:
        with UnitOfWork(engine, read_only=True) as uow:
            webhooks.get(uow, subscription_id)
            items = webhooks.deliveries_out(uow, uow.webhooks.deliveries(
                subscription_id, status=status, before=None, limit=limit))
    except DomainError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if as_json:
        for item in items:
            typer.echo(json.dumps(item))
        return
    rows = []
    for d in items:
        last = d["attempts"][-1] if d["attempts"] else None
        answer = "" if last is None else str(last["status_code"] or last["error"])
        rows.append([d["event_id"], d["event_type"], d["entity_id"], d["status"],
                     str(d["attempt_count"]), answer, d["next_attempt_at"] or ""])
    print_table(["event", "type", "entity", "status", "attempts", "last answer",
                 "next attempt"], rows)


@webhooks_app.command("replay")
def webhooks_replay(
    subscription_id: Annotated[str, typer.Argument(help="The subscription's id")],
    after: Annotated[str | None, typer.Option(help="Every subscribed event after this id")]
    = None,
    event: Annotated[list[str] | None, typer.Option(help="An event id (repeatable)")] = None,
) -> None:
    """Deliver events again."""
    if (after is None) == (not event):
        err.print("[red]error:[/red] give either --after or --event")
        raise typer.Exit(2)
    engine = make_engine(get_settings())
    try:
        with UnitOfWork(engine) as uow:
            result = webhooks.replay(uow, subscription_id, after, event)
    except DomainError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"queued {result['queued']} deliveries for {subscription_id}")


@app.command("import")
def import_file(
    kind: Annotated[str, typer.Argument(help="products, locations, inventory or orders")],
    file: Annotated[Path, typer.Argument(help="The CSV or JSON Lines file",
                                         show_default=False)],
    mode: Annotated[ImportMode, typer.Option(help="full replaces each location's stock "
                                             "snapshot; delta adds")] = ImportMode.DELTA,
    format: Annotated[FileFormat | None, typer.Option(help="csv or jsonl (default: by the "
                                                      "file name)")] = None,
    resume: Annotated[str | None, typer.Option(
        help="Finish an interrupted import of the same file: the import id it printed")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Import a CSV or JSON Lines file; bad rows are reported by line number.

    The whole file is checked before anything is written: a file that cannot be read is
    refused and nothing of it applied. Rows are then written in chunks; an import that stops
    part way says which lines were applied and how to finish it with --resume.

    oms import orders places LIVE orders, as POST /v1/orders does: each is routed to a
    location and its stock reserved, unless its line says "historical": true (history from a
    previous system is written as it was, without routing or touching stock).
    """
    if kind not in ("products", "locations", "inventory", "orders"):
        err.print("[red]error:[/red] kind must be products, locations, inventory or orders")
        raise typer.Exit(2)
    try:
        source = ImportFile.open(file)
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot read {escape(str(file))}: "
                  f"{escape(str(exc.strerror or exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc
    settings = get_settings()
    engine = make_engine(settings)
    fmt = FileFormat.JSONL if kind == "orders" else format or guess_format(file.name)
    sender = Sender(resume_id=resume,
                    lease=dt.timedelta(seconds=settings.import_lease_seconds))
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                        disable=as_json)
    task = progress.add_task(f"{kind} ({mode.value})", total=source.line_count)

    def advance(line: int) -> None:
        progress.start()  # once the file is checked: a refused file shows only its error
        progress.update(task, completed=line)

    with source:
        try:
            report = (import_orders(engine, source, on_progress=advance, sender=sender,
                                    window=settings.placement_window())
                      if kind == "orders"
                      else run_import(engine, kind, source, fmt, mode, settings.import_chunk_size,
                                      on_progress=advance, sender=sender))
        except ImportInterrupted as exc:
            progress.stop()
            stopped = exc.report
            err.print(f"[red]error:[/red] the import stopped after line "
                      f"{stopped.applied_through_line} ({stopped.imported} rows applied): "
                      f"{escape(_reason(exc.cause))}; finish it with: oms import {kind} "
                      f"{escape(str(file))} --mode {mode.value} --resume {stopped.import_id}",
                      soft_wrap=True)
            raise typer.Exit(130 if isinstance(exc.cause, KeyboardInterrupt) else 1) from exc
        except DomainError as exc:
            progress.stop()
            err.print(f"[red]error:[/red] {escape(str(file))}: {escape(exc.detail)}",
                      soft_wrap=True)
            raise typer.Exit(2) from exc
        finally:
            progress.stop()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        again = (f", resumed after line {report.resumed_after_line}"
                 if report.resumed_after_line is not None else "")
        console.print(f"import {report.import_id}{again}: {report.rows} rows: "
                      f"[green]{report.imported} imported[/green], "
                      f"[red]{report.failed} failed[/red]"
                      + (f", {report.zeroed} zeroed (not in the full snapshot)"
                         if report.zeroed else "")
                      + (f", {report.duplicates} loaded before" if report.duplicates else ""))
        for e in report.errors[:50]:
            console.print(f"  line {e.line}: {e.reason}", markup=False)
        if report.failed > 50:
            console.print(f"  … and {report.failed - 50} more (use --json for all)")
    if report.failed:
        raise typer.Exit(1)


def _reason(exc: BaseException) -> str:
    reason = ("interrupted" if isinstance(exc, KeyboardInterrupt)
              else str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)
    # What went wrong afterwards too (the run's progress could not be read back): without
    # it, a resume refused later would have no explanation.
    return "; ".join([reason, *getattr(exc, "__notes__", ())])


@app.command()
def demo(
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing if the catalog "
                                           "already has products")] = False,
    key_file: Annotated[Path, typer.Option(help="Where to keep the demo admin key")] = Path(
        ".oms-demo-key"),
) -> None:
    """Load the demo data set: stores and a DC, 200+ products, stock, future stock."""
    from oms.demo.loader import load_demo

    engine = make_engine(get_settings())
    with UnitOfWork(engine, read_only=True) as uow:
        has_products = bool(uow.products.page(after=None, limit=1, barcode=None, q=None))
    if not (if_empty and has_products):
        summary = load_demo(engine)
        console.print(summary)
    key = key_file.read_text().strip() if key_file.exists() else ""
    if key:
        # The file outlives the database it was made for (a deleted or recreated DB file).
        with UnitOfWork(engine, read_only=True) as uow:
            if apikeys.authenticate(uow, apikeys.hash_key(key)) is None:
                key = ""
    if not key:
        with UnitOfWork(engine) as uow:
            _, key = apikeys.create_key(uow, Role.ADMIN, [], "demo admin")
        key_file.write_text(key + "\n")
        key_file.chmod(0o600)
    console.print(f"demo admin key (kept in {key_file}): {key}")


if __name__ == "__main__":
    app()
