"""The `siyu` command: serve, worker, migrate, demo, users, workspaces, contact imports and exports.

Each command that writes does it in one `session_scope()`: it commits when the command succeeds and
writes nothing when it fails. Writes are audited as the OS user at the command line.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from fastapi import FastAPI
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import make_url

from siyu import __version__
from siyu.core.audit import Actor
from siyu.core.errors import Invalid, NotFound, SiyuError

app = typer.Typer(
    name="siyu",
    help="siyu — open-source private-domain marketing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
user_app = typer.Typer(help="Console users.", no_args_is_help=True)
workspace_app = typer.Typer(help="Workspaces (tenants).", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(workspace_app, name="workspace")
contacts_app = typer.Typer(help="Contacts: import and export files.", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")



def out() -> Console:
    """Where results go (made per use so COLUMNS and redirections of the moment apply)."""
    console = Console(soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # Piped into grep or a file: keep each table row on one line instead of 80 columns.
        console = Console(soft_wrap=True, width=240)
    return console


def err() -> Console:
    """Where errors and progress go."""
    return Console(stderr=True, soft_wrap=True)

# Tells the app factory uvicorn imports (also in --reload's child process) whether to run a worker.
_SERVE_WORKER_ENV = "SIYU_SERVE_WORKER"
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")]


def cli_actor() -> Actor:
    """The person at the command line, named by their OS user."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = f"uid {os.getuid()}"
    return Actor.cli(name)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn a service's refusal into one red line naming the field, and exit 2."""
    try:
        yield
    except SiyuError as exc:
        where = f"{exc.field}: " if exc.field else ""
        err().print(f"[red]error: {escape(where + exc.message)}[/red]", highlight=False)
        raise typer.Exit(2) from None


def _database_url() -> str:
    from siyu.settings import get_settings

    return get_settings().database_url


def _shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def migrate_database() -> str:
    """Bring the configured database to the newest schema; returns the URL migrated (password hidden)."""
    from siyu.core.migrate import upgrade

    url = _database_url()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    upgrade(url)
    return _shown_url(url)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("people"),
        TimeElapsedColumn(), console=err(), transient=False,
    )


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


# --- running ------------------------------------------------------------------------------------------

def served_app() -> FastAPI:
    """The application `siyu serve` runs (an import string, so --reload can rebuild it)."""
    from siyu.app import create_app

    return create_app(start_worker=os.environ.get(_SERVE_WORKER_ENV, "1") == "1")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo: Annotated[bool, typer.Option("--demo", help="Fill a demo workspace first (once).")] = False,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Run no in-process worker.")] = False,
    reload: Annotated[bool, typer.Option("--reload", help="Restart on code changes (development).")] = False,
) -> None:
    """Migrate, then run the API, the console and (unless --no-worker) one worker."""
    import uvicorn

    from siyu import demo as demo_data
    from siyu.core.db import session_scope

    with reported_errors():
        out().print(f"database {migrate_database()} is up to date")
        login: tuple[str, str] | None = None
        if demo:
            with session_scope(write=False) as session:
                existing = demo_data.find_demo_workspace(session)
            if existing is None:
                out().print("filling the demo workspace…")
                with _progress() as progress:
                    result = demo_data.run_demo(cli_actor(), progress=progress)
                out().print(f"demo workspace #{result.workspace.id} ready: {result.accepted} events")
            login = (demo_data.DEMO_OWNER_EMAIL, demo_data.DEMO_PASSWORD)
    shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    lines = [f"console  [bold cyan]http://{shown_host}:{port}/console[/bold cyan]",
             f"API docs http://{shown_host}:{port}/api/docs"]
    if login:
        lines.append(f"login    [bold]{login[0]}[/bold]  password [bold]{login[1]}[/bold]")
    out().print(Panel("\n".join(lines), title=f"siyu {__version__}", expand=False))
    os.environ[_SERVE_WORKER_ENV] = "0" if no_worker else "1"
    uvicorn.run("siyu.cli:served_app", factory=True, host=host, port=port, reload=reload,
                proxy_headers=True, log_level="info")


@app.command()
def worker(
    processes: Annotated[int, typer.Option(min=1, help="Worker processes to run.")] = 1,
    burst: Annotated[bool, typer.Option("--burst", help="Stop once no job is due.")] = False,
) -> None:
    """Run background workers that claim and do due jobs."""
    from siyu.core.worker import run_processes, run_worker

    if processes == 1:
        handled = run_worker(burst=burst)
        out().print(f"worker stopped after {handled} jobs")
        return
    status = run_processes(processes, burst=burst)
    if status:
        err().print(f"[red]a worker process ended with status {status}[/red]")
        raise typer.Exit(status)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (safe to run again)."""
    with reported_errors():
        out().print(f"database {migrate_database()} is up to date")


@app.command()
def demo(
    workspace: Annotated[int | None, typer.Option(help="Fill this workspace, not the demo one.")] = None,
    contacts: Annotated[int, typer.Option(min=0, help="People to make events for.")] = 500,
    seed: Annotated[int, typer.Option(help="Same seed, same data: a rerun adds nothing twice.")] = 2026,
    days: Annotated[int, typer.Option(min=1, help="How far back the events go.")] = 90,
    password: Annotated[str | None, typer.Option(help="Password of new demo users.")] = None,
) -> None:
    """Fill a workspace with demo users, staff and realistic events."""
    from siyu import demo as demo_data

    with reported_errors(), _progress() as progress:
        result = demo_data.run_demo(
            cli_actor(), contacts=contacts, seed=seed, days=days, workspace_id=workspace,
            password=password or demo_data.DEMO_PASSWORD, progress=progress,
        )
    out().print(f"workspace #{result.workspace.id} {result.workspace.name}: "
              f"{len(result.users_created)} users created, {result.accepted} events added, "
              f"{result.duplicates} already there, {result.errors} refused")
    out().print(f"login [bold]{result.owner_email}[/bold] password [bold]{result.password}[/bold]"
              + (" (unless changed since)" if not result.users_created else ""))


@app.command()
def version() -> None:
    """Print siyu's version."""
    out().print(f"siyu {__version__}")


# --- users --------------------------------------------------------------------------------------------

@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="Login email.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    workspace: Annotated[int | None, typer.Option(help="Workspace id to add the user to.")] = None,
    role: Annotated[str, typer.Option(help="Role in that workspace.")] = "operator",
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a console user, optionally a member of a workspace (asks for the password)."""
    from siyu.core import workspaces
    from siyu.core.db import session_scope
    from siyu.core.errors import Conflict
    from siyu.core.tenancy import bind_workspace

    with reported_errors():
        email = workspaces.normalise_email(email)
        if not name.strip():
            raise Invalid("a user needs a name", field="name")
        password = _read_password(password_stdin)
        workspaces.check_password(password)
        with session_scope() as session:
            if workspaces.find_user(session, email) is not None:
                raise Conflict(f"a user with email {email} already exists", field="email")
            if workspace is None:
                user = workspaces.create_user(session, email=email, name=name, password=password)
                where = ""
            else:
                ws = workspaces.get_workspace(session, workspace)
                bind_workspace(session, ws.id)
                user, member = workspaces.add_member(
                    session, cli_actor(), workspace_id=ws.id, email=email, role=role, name=name,
                    password=password,
                )
                where = f" as {member.role} of workspace #{ws.id} {ws.name}"
    out().print(f"user #{user.id} {user.email} created{where}")


@user_app.command("list")
def user_list() -> None:
    """Every user with their workspaces and roles."""
    from siyu.core import workspaces
    from siyu.core.db import session_scope

    table = Table("id", "email", "name", "active", "workspaces")
    with session_scope(write=False) as session:
        for user, memberships in workspaces.list_users(session):
            roles = ", ".join(f"{ws} ({role})" for ws, role in memberships) or "—"
            table.add_row(str(user.id), user.email, user.name, "yes" if user.is_active else "no", roles)
    out().print(table)


@user_app.command("reset-password")
def user_reset_password(
    email: Annotated[str, typer.Argument(help="The user's email.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a new password for a user and end their console sessions."""
    from siyu.core import workspaces
    from siyu.core.db import session_scope

    with reported_errors():
        email = workspaces.normalise_email(email)
        with session_scope(write=False) as session:
            if workspaces.find_user(session, email) is None:
                raise NotFound(f"no user has the email {email}", field="email")
        password = _read_password(password_stdin)
        with session_scope() as session:
            user = workspaces.find_user(session, email)
            if user is None:
                raise NotFound(f"no user has the email {email}", field="email")
            workspaces.reset_password(session, cli_actor(), user, password)
    out().print(f"password of {email} changed; their console sessions are ended")


# --- workspaces ---------------------------------------------------------------------------------------

@workspace_app.command("create")
def workspace_create(
    name: Annotated[str, typer.Argument(help="The brand's name.")],
    owner: Annotated[str | None, typer.Option(help="Email of an existing user who will own it.")] = None,
    timezone: Annotated[str, typer.Option(help="IANA timezone for schedules.")] = "Asia/Shanghai",
    currency: Annotated[str, typer.Option(help="ISO 4217 currency.")] = "CNY",
    locale: Annotated[str, typer.Option(help="Default language: en, zh_Hans or es.")] = "zh_Hans",
) -> None:
    """Create a workspace, optionally with an owner."""
    from siyu.core import workspaces
    from siyu.core.db import session_scope

    with reported_errors(), session_scope() as session:
        owner_user = None
        if owner is not None:
            try:
                owner_email = workspaces.normalise_email(owner)
            except Invalid as exc:
                raise Invalid(exc.message, field="owner") from None
            owner_user = workspaces.find_user(session, owner_email)
            if owner_user is None:
                hint = "create one with `siyu user create`"
                raise NotFound(f"no user has the email {owner} ({hint})", field="owner")
        ws = workspaces.create_workspace(session, cli_actor(), name=name, owner=owner_user, timezone=timezone,
                                         currency=currency, locale=locale)
    owned = f", owned by {owner_user.email}" if owner_user else ""
    out().print(f"workspace #{ws.id} {ws.name} created{owned}")


@workspace_app.command("list")
def workspace_list() -> None:
    """Every workspace with its settings and member count."""
    from sqlalchemy import func, select

    from siyu.core import workspaces
    from siyu.core.db import session_scope
    from siyu.core.models import Membership

    table = Table("id", "name", "timezone", "currency", "locale", "members", "created")
    with session_scope(write=False) as session:
        counts: dict[int, int] = {
            ws_id: n for ws_id, n in session.execute(
                select(Membership.workspace_id, func.count()).group_by(Membership.workspace_id)
            )
        }
        for ws in workspaces.list_workspaces(session):
            table.add_row(str(ws.id), ws.name, ws.timezone, ws.currency, ws.locale, str(counts.get(ws.id, 0)),
                          ws.created_at.strftime("%Y-%m-%d %H:%M UTC"))
    out().print(table)


# --- contacts -----------------------------------------------------------------------------------------

def _rows_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"),
        TimeElapsedColumn(), console=err(), transient=False,
    )


def _map_options(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, sep, target = pair.rpartition("=")
        if not sep or not column:
            raise Invalid(f"--map takes column=target, not {pair!r}", field="map")
        mapping[column] = target
    return mapping


@contacts_app.command("import")
def contacts_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .csv or .xlsx file.")],
    workspace: Annotated[int, typer.Option(help="Workspace id to import into.")],
    map_: Annotated[list[str] | None, typer.Option(
        "--map", help="column=target, e.g. 手机=phone, VIP=attribute:vip, 兴趣=tags:interest, Notes=ignore; "
                      "columns not named keep the suggested target.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row and write nothing.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="File values replace existing ones.")] = False,
    encoding: Annotated[str | None, typer.Option(help="The CSV's encoding, if detection gets it wrong.")] = None,
    errors_csv: Annotated[Path | None, typer.Option("--errors-csv", help="Write every refused row here.")] = None,
    show_errors: Annotated[int, typer.Option(min=0, help="Refused rows to print.")] = 20,
) -> None:
    """Import contacts from a CSV or XLSX file, deduplicated by phone, email and other identities."""
    import csv as csv_module

    from siyu.contacts import imports
    from siyu.contacts.import_rows import ChunkResult
    from siyu.core import workspaces
    from siyu.core.db import session_scope
    from siyu.core.tenancy import bind_workspace

    refused: list[dict[str, object]] = []
    with reported_errors():
        content = file.read_bytes()
        with session_scope(write=False) as session:
            workspaces.get_workspace(session, workspace)
            bind_workspace(session, workspace)
            preview = imports.preview_import(session, content, file.name, None, limit=0, encoding=encoding)
        mapping = {**preview.suggested, **_map_options(map_ or [])}
        table = Table("column", "becomes")
        for column, target in mapping.items():
            table.add_row(escape(column), target)
        out().print(table)
        with _rows_progress() as progress:
            task = progress.add_task("checking" if dry_run else "importing", total=None)

            def started(total: int) -> None:
                progress.update(task, total=total)

            def chunk_done(result: ChunkResult, rows: int) -> None:
                refused.extend(result.errors)
                progress.advance(task, rows)

            imp = imports.import_file(
                workspace_id=workspace, content=content, filename=file.name, mapping=mapping, dry_run=dry_run,
                overwrite=overwrite, encoding=encoding, actor=cli_actor(), on_start=started, on_chunk=chunk_done,
            )
    verb = "would be" if dry_run else "were"
    out().print(f"import #{imp.id} {file.name}: {imp.processed_rows} rows; {imp.created_count} contacts {verb} "
                f"created, {imp.updated_count} {verb} updated, {imp.error_count} rows refused")
    if refused and show_errors:
        table = Table("row", "column", "problem")
        for error in refused[:show_errors]:
            table.add_row(str(error["row"]), escape(str(error["column"] or "—")), escape(str(error["message"])))
        out().print(table)
        if len(refused) > show_errors:
            out().print(f"… and {len(refused) - show_errors} more" + ("" if errors_csv else " (see --errors-csv)"))
    if errors_csv is not None:
        columns = list(mapping)
        with errors_csv.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv_module.writer(fh)
            writer.writerow(["row", "column", "problem", *columns])
            for error in refused:
                values = error.get("values") or {}
                assert isinstance(values, dict)
                writer.writerow([error["row"], error["column"] or "", error["message"],
                                 *(values.get(c, "") for c in columns)])
        out().print(f"{len(refused)} refused rows written to {errors_csv}")


@contacts_app.command("export")
def contacts_export(
    workspace: Annotated[int, typer.Option(help="Workspace id to export from.")],
    output: Annotated[Path, typer.Option("-o", "--output", dir_okay=False, help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or xlsx.")] = "csv",
    segment: Annotated[int | None, typer.Option(help="Only this segment's members.")] = None,
    tag: Annotated[int | None, typer.Option(help="Only contacts with this tag id.")] = None,
) -> None:
    """Export contacts (all, a segment's members or those with a tag) to a CSV or XLSX file."""
    from siyu.contacts import exports
    from siyu.core import workspaces
    from siyu.core.db import session_scope
    from siyu.core.tenancy import bind_workspace

    with reported_errors(), session_scope(write=False) as session:
        exports.check_format(fmt)
        workspaces.get_workspace(session, workspace)
        bind_workspace(session, workspace)
        total = exports.count_contacts(session, segment_id=segment, tag_id=tag)
        with _rows_progress() as progress, output.open("wb") as fh:
            task = progress.add_task("exporting", total=total)
            written = exports.write_export(session, fh, fmt, segment_id=segment, tag_id=tag,
                                           on_rows=lambda n: progress.advance(task, n))
    out().print(f"{written} contacts written to {output}")
