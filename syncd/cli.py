"""The ``syncd`` command.

Exit codes: 0 ok, 1 failed (a service refused, a cycle had errors), 2 bad
usage or configuration, 3 (``syncd once``) writes still pending. Every error
a user can cause is one line on stderr.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

import click

from syncd import __version__
from syncd.errors import ConfigError, StoreLocked, StoreUnusable, SyncdError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_PENDING = 3  # syncd once: nothing failed, writes still wait (a rate limit, a retry)


class Context:
    def __init__(self, config: str | None, log_level: str | None, log_format: str | None):
        self.config_path = config
        self.log_level = log_level
        self.log_format = log_format
        self._settings = None

    def settings(self):
        if self._settings is None:
            from syncd.config import load_config
            from syncd.logs import configure_logging

            self._settings = load_config(self.config_path)
            configure_logging(self.log_level or self._settings.log.level, self.log_format or self._settings.log.format)
        return self._settings

    def app(self, *, readonly: bool = False):
        from syncd.app import build_app

        return build_app(self.settings(), readonly=readonly)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"syncd: {message}", err=True)
    sys.exit(code)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors a user can cause into one line and the right exit code."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            for problem in exc.problems:
                click.echo(f"syncd: {problem}", err=True)
            sys.exit(EXIT_USAGE)
        except StoreLocked as exc:
            fail(str(exc))
        except StoreUnusable as exc:  # damaged, unwritable, a full disk: the operator acts
            fail(str(exc), EXIT_USAGE)
        except SyncdError as exc:
            fail(str(exc))
        except ValueError as exc:  # bad references given on the command line
            fail(str(exc), EXIT_USAGE)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "-c",
    metavar="PATH",
    envvar="SYNCD_CONFIG",
    show_envvar=True,
    help="Configuration file (default: ./syncd.toml).",
)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="Override [log] level.")
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    help="Override [log] format (auto: JSON unless on a terminal).",
)
@click.version_option(__version__, prog_name="syncd")
@click.pass_context
def main(ctx: click.Context, config: str | None, log_level: str | None, log_format: str | None) -> None:
    """syncd links helpdesk tickets to tracker issues and keeps both sides current.

    \b
    Exit status: 0 ok, 1 failed, 2 bad usage or configuration,
    3 writes still pending after `syncd once` (see: syncd once --help).
    Secrets come from the environment: SYNCD_CONNECTORS__<NAME>__<KEY>.
    """
    ctx.obj = Context(config, log_level, log_format)


# -- running ----------------------------------------------------------------------------------


@main.command()
@click.pass_obj
@guarded
def run(obj: Context) -> None:
    """Run as a service: poll on intervals, deliver, serve /healthz, /metrics and a status page.

    The status page (/ on daemon.health_address) answers this machine only.
    A health address that cannot be used (a port already taken) exits 2.

    SIGTERM or SIGINT finish the step in hand and exit 0; SIGHUP reloads the
    configuration (a bad new one, or one changing what needs a restart such as
    the store path or health address, is refused and the running one kept).
    """
    import signal

    # Until the daemon is built (imports, configuration, store), a signal is
    # held, not acted on by the default handler (which would end the process
    # mid-start, or on SIGHUP at all); the daemon then takes it.
    held: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda received, frame: held.append(received))

    from syncd.app import build_app
    from syncd.config import load_config
    from syncd.daemon import Daemon

    obj.settings()
    daemon = Daemon(lambda: load_config(obj.config_path), build_app)
    daemon.install_signals()
    for number in held:
        signal.raise_signal(number)
    sys.exit(daemon.run())


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the cycle report as JSON.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Plan the cycle and print what it would write, per ticket and issue with totals; "
    "send nothing to the services and keep nothing in the store (the services are read).",
)
@click.option(
    "--progress/--no-progress",
    "show_progress",
    default=True,
    show_default=True,
    help="Progress on stderr: on a terminal one live line; elsewhere a line every 30 s.",
)
@click.pass_obj
@guarded
def once(obj: Context, as_json: bool, dry_run: bool, show_progress: bool) -> None:
    """Run one cycle (poll every connector, then deliver) and exit: for cron.

    \b
    Exit status:
      0  everything planned was delivered
      1  something failed: a poll, a write (retried later), or writes wait
         in the dead letter (see: syncd outbox list --state dead)
      2  bad usage or configuration
      3  nothing failed, but writes are still pending: a service's rate
         limit (the summary says until when) or a retry not due yet; run
         again later
    With --dry-run: 0, or 1 when a poll failed.

    A connector whose service asks for a longer wait than its max_wait (a rate
    limit) is not waited for: the others finish, the summary names it and when
    its limit ends (runs before that time send nothing to it).
    """
    if dry_run:
        _once_dry_run(obj, as_json, show_progress)
        return
    with obj.app() as app:
        held = {feed: lease["holder"] for feed, lease in app.store.leases().items() if lease["live"]}
        if held:
            # Replicas share this (PostgreSQL) store: a cycle beside them would poll their feeds too.
            holders = ", ".join(sorted(set(held.values())))
            fail(f"syncd run replicas are using this store ({holders}); they do this work: stop them first")
        progress = _watch(app, show_progress)
        try:
            report = app.engine.cycle()
        finally:
            if progress is not None:
                progress.finish()
        for poll in report.polls:  # for `syncd status`: last success, last error
            if poll.error or poll.rate_limited_until is None:
                app.store.note_poll(poll.connector, report.now or app.engine.clock(), poll.error)
        code = _once_exit(report)
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "polls": [p.__dict__ for p in report.polls],
                        "delivery": report.delivery.__dict__ if report.delivery else None,
                        "rate_limited": {
                            name: {"service": w.service, "until": w.until} for name, w in report.rate_limited.items()
                        },
                        "pending": report.pending,
                        "dead": report.dead,
                        "ok": report.ok,
                        "exit": code,
                    },
                    default=str,
                )
            )
        else:
            click.echo(report.summary())
            if code == EXIT_PENDING:
                click.echo(
                    f"{report.pending} write(s) not delivered yet; they go at the next run "
                    "(see: syncd outbox list --state pending)"
                )
            elif report.dead:
                click.echo(f"{report.dead} write(s) in the dead letter (see: syncd outbox list --state dead)")
    sys.exit(code)


def _once_exit(report: Any) -> int:
    """``syncd once``'s exit status from its cycle (see its --help)."""
    if not report.ok or report.dead:
        return EXIT_FAILED
    if report.pending:
        return EXIT_PENDING
    return EXIT_OK


def _watch(app: Any, show: bool = True, *, stream: Any = None) -> Any:
    """Progress of the run on stderr (None when not wanted): live on a terminal, else a line now and then."""
    from syncd.progress import PlainLines, Progress, TerminalLine

    if not show:
        return None
    stream = stream or sys.stderr
    live = stream.isatty()
    progress = Progress(TerminalLine(stream) if live else PlainLines(stream), live=live, wall=app.engine.clock)
    app.engine.progress = progress
    app.engine.parking.listeners.append(lambda wait, seconds, begun: progress.waiting(wait.service, until=wait.until))
    for connector in app.connectors.values():
        service = connector.http.service
        connector.http.wait_listeners.append(lambda seconds, service=service: progress.waiting(service, seconds))
    return progress


def _once_dry_run(obj: Context, as_json: bool, show_progress: bool) -> None:
    from syncd.app import build_app
    from syncd.dryrun import dry_run

    settings = obj.settings()
    holder: dict[str, Any] = {}

    def build(path: Path) -> Any:
        app = build_app(settings, store_path=path)
        holder["progress"] = _watch(app, show_progress)
        return app

    def copy(path: Path) -> int:
        from syncd.store import open_store, scratch_copy, scratch_copy_of

        if not settings.store.url:
            return scratch_copy(settings.store_path, path)
        with open_store(settings, readonly=True) as source:  # PostgreSQL: its rows into a scratch SQLite file
            return scratch_copy_of(source, path)

    try:
        result = dry_run(build, copy)
    finally:
        if holder.get("progress") is not None:
            holder["progress"].finish()
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        click.echo(result.text())
    sys.exit(EXIT_OK if result.cycle.ok else EXIT_FAILED)


@main.command()
@click.option(
    "--offline",
    is_flag=True,
    help="Validate the files only (with secret files others can read, keys two trackers claim); "
    "do not contact the services.",
)
@click.pass_obj
@guarded
def check(obj: Context, offline: bool) -> None:
    """Validate the configuration and the store, then try each connector against its service.

    \b
    Online, each connector tries its credentials, then the objects the
    configuration and the mapping files name: custom fields and their types,
    team and project keys, issue types, repositories, and routes to places the
    connector does not follow. A service that cannot be reached is said at once,
    in one line, without retrying. Findings are one line each, naming the config
    key or the mapping file; an error exits 1.
    """
    from connectors.base import Tracker
    from syncd.app import build_connectors
    from syncd.checks import check_targets, overlapping_keys, secret_file_findings

    settings = obj.settings()
    click.echo(f"configuration {settings.source or '(environment only)'}: ok")
    mappings = _check_mappings(settings)
    _check_store(settings)
    findings = secret_file_findings(settings)
    connectors = build_connectors(settings)
    failed = 0
    try:
        if not offline:
            targets = check_targets(settings, mappings, connectors)
            for name, connector in connectors.items():
                failed += _check_connector(name, connector, targets[name])
        trackers = {
            name: c for name, c in connectors.items() if isinstance(c, Tracker) and name in settings.sync.trackers
        }
        findings += overlapping_keys(trackers)
    finally:
        for connector in connectors.values():
            connector.close()
    for finding in findings:
        _echo_finding(finding)
    errors = failed + sum(f.level == "error" for f in findings)
    sys.exit(EXIT_FAILED if errors else EXIT_OK)


def _check_connector(name: str, connector: Any, targets: Any) -> int:
    """Credentials, then objects; one line each. Returns how many errors it found."""
    connector.http.answer_fast()  # one attempt, short timeouts: an unreachable URL is said at once
    label = f"  {name} ({connector.kind})"
    try:
        who = connector.check()
    except SyncdError as exc:
        click.echo(f"{label}: FAILED: {_without_prefix(str(exc), name)}")
        return 1
    click.echo(f"{label}: ok, {who}")
    try:
        found = connector.check_objects(targets)
    except SyncdError as exc:
        click.echo(f"    error: connectors.{name}: could not check its objects: {_without_prefix(str(exc), name)}")
        return 1
    for finding in found:
        _echo_finding(finding, indent="    ")
    return sum(f.level == "error" for f in found)


def _echo_finding(finding: Any, indent: str = "  ") -> None:
    click.echo(f"{indent}{finding.level}: {finding.where}: {finding.message}")


def _without_prefix(text: str, name: str) -> str:
    return text.removeprefix(f"{name}: ")


def _check_store(settings: Any) -> None:
    """SQLite's quick check of the store, read-only (works while the daemon runs); damage exits 2."""
    from syncd.errors import StoreError, StoreUnusable
    from syncd.store import open_store

    path = settings.store_path
    if not settings.store.url and not path.exists() and not path.is_symlink():
        click.echo(f"store: none yet; the first run creates {path}")
        return
    try:
        with open_store(settings, readonly=True) as store:
            path = store.location
            click.echo(f"store {path}: ok, schema {store.schema_version}, {store.count_links()} active link(s)")
    except StoreUnusable:
        raise
    except StoreError as exc:  # older schema, say: the next run migrates it
        click.echo(f"store {path}: {exc}")


def _check_mappings(settings: Any) -> Any:
    """Validate the mapping directory; its problems exit 2 through ``guarded``."""
    from syncd.app import handoff_mappings

    mappings = handoff_mappings(settings)
    if mappings.files:
        click.echo(
            f"mappings {settings.mappings_path}: ok, {len(mappings.files)} file(s), {len(mappings.routes)} route(s)"
        )
    elif settings.mappings_path.is_dir():
        click.echo(f"mappings {settings.mappings_path}: no mapping files in it, built-in defaults apply")
    else:
        click.echo(
            f"mappings: sync.mappings is not set and {settings.mappings_path} does not exist; built-in defaults apply"
        )
    return mappings


def _sandbox_missing(exc: ModuleNotFoundError) -> NoReturn:
    """The fakes' own dependencies are the ``sandbox`` extra, which the daemon does not need: say what to install."""
    if (exc.name or "").partition(".")[0] != "graphql":
        raise exc
    click.echo("syncd: the sandbox needs the 'sandbox' extra (graphql-core): pip install 'syncd[sandbox]'", err=True)
    sys.exit(EXIT_FAILED)


@main.command()
@click.option("--keep", is_flag=True, help="Keep the demo's state directory and print where it is.")
@click.option(
    "--helpdesk",
    metavar="KIND",
    default=None,
    help="Play the story with this helpdesk's fake. Default: the first registered helpdesk that offers the story.",
)
@click.pass_obj
@guarded
def demo(ctx: Context, keep: bool, helpdesk: str | None) -> None:
    """Play a handoff story against the built-in sandbox and show what syncd did."""
    try:
        from syncd.demo import run_demo, story_helpdesk
    except ModuleNotFoundError as exc:
        _sandbox_missing(exc)
    try:
        kind = story_helpdesk(helpdesk)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    from syncd.logs import configure_logging

    # The story is the output: syncd's own log lines only for what went wrong (--log-level to see more).
    configure_logging(ctx.log_level or "warning", ctx.log_format or "auto")
    sys.exit(run_demo(keep=keep, helpdesk=kind))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    "ports",
    metavar="KIND=PORT",
    multiple=True,
    help="Serve the fake of connector KIND on PORT (0: any free one); repeatable. "
    "Default: each fake's own port, shown when the sandbox starts.",
)
@click.option("--empty", is_flag=True, help="Start without seed data.")
@click.option(
    "--helpdesk",
    metavar="KIND",
    default=None,
    help="Serve this helpdesk's fake. Default: the first registered helpdesk that offers the demo's story.",
)
@guarded
def sandbox(host: str, ports: tuple[str, ...], empty: bool, helpdesk: str | None) -> None:
    """Serve the fake services on their own for manual play (Ctrl-C stops).

    The fakes are those of the installed connectors (each connector names its fake):
    one helpdesk (--helpdesk) and every tracker."""
    try:
        from syncd.sandbox.runner import DEFAULT_PORTS, HELPDESK, HELPDESKS, serve
    except ModuleNotFoundError as exc:
        _sandbox_missing(exc)
    if helpdesk is not None and helpdesk not in HELPDESKS:
        raise click.BadParameter(f"{helpdesk!r}: choose from {', '.join(HELPDESKS)}", param_hint="--helpdesk")
    chosen: dict[str, int] = {}
    for item in ports:
        kind, _, port = item.partition("=")
        if kind not in DEFAULT_PORTS or not port.isdigit():
            raise click.BadParameter(
                f"{item!r}: write KIND=PORT with KIND one of {', '.join(DEFAULT_PORTS)}", param_hint="--port"
            )
        chosen[kind] = int(port)
    serve(host=host, ports=chosen, seed_data=not empty, helpdesk=helpdesk or HELPDESK)


# -- links --------------------------------------------------------------------------------------


def _open_for_write(obj: Context):
    """The store for a command that writes; while the daemon runs, queue for it instead."""
    from syncd.app import build_app

    settings = obj.settings()
    try:
        return build_app(settings), True
    except StoreLocked:
        return build_app(settings, shared=True), False


@main.command()
@click.argument("ticket")
@click.argument("issue")
@click.option("--tracker", help="Tracker connector name, when the issue key does not say.")
@click.pass_obj
@guarded
def link(obj: Context, ticket: str, issue: str, tracker: str | None) -> None:
    """Link TICKET (helpdesk id) to ISSUE (key such as ENG-123, URL or id)."""
    app, deliver = _open_for_write(obj)
    with app:
        t, i, created = app.engine.link(_ticket_id(ticket), issue, tracker)
        if not created:
            click.echo(f"{t.key} is already linked to {i.key}")
            return
        click.echo(f"linked {t.key} ({t.subject}) to {i.key} ({i.title}, {i.state_name})")
        if deliver:
            report = app.engine.deliver()
            click.echo(f"delivered {report.done} write(s)" + (f", {report.failed} to retry" if report.failed else ""))
        else:
            click.echo("the running daemon will deliver the writes")


@main.command()
@click.argument("ticket")
@click.argument("issue")
@click.option("--tracker", help="Tracker connector name, when the issue key does not say.")
@click.pass_obj
@guarded
def unlink(obj: Context, ticket: str, issue: str, tracker: str | None) -> None:
    """End the link between TICKET and ISSUE (a note says so on the ticket)."""
    app, deliver = _open_for_write(obj)
    with app:
        if not app.engine.unlink(_ticket_id(ticket), issue, tracker):
            fail(f"ticket {ticket} is not linked to {issue}")
        click.echo(f"unlinked {ticket} from {issue}")
        if deliver:
            app.engine.deliver()


@main.command("links")
@click.option("--ticket", help="Only this ticket's links.")
@click.option("--issue", metavar="KEY", help="Only the links to this issue (its key, e.g. ENG-12, or its id).")
@click.option("--all", "show_all", is_flag=True, help="Include ended links.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@guarded
def links_cmd(obj: Context, ticket: str | None, issue: str | None, show_all: bool, as_json: bool) -> None:
    """List links: ticket and its subject, issue and its state, how it was linked, since when (UTC)."""
    from mappings.review import stamp
    from syncd.records import Ref

    with obj.app(readonly=True) as app:
        store = app.store
        if ticket:
            rows = store.links_for_ticket(Ref(app.engine.helpdesk.name, _ticket_id(ticket)), active=not show_all)
        else:
            rows = store.all_links(active=not show_all)
        snaps = store.get_snapshots([r.issue for r in rows] + [r.ticket for r in rows])
        shown = []
        for r in rows:
            i, t = snaps.get(r.issue), snaps.get(r.ticket)
            key = i.key if i else r.issue.id
            if issue and issue.strip().casefold() not in (key.casefold(), r.issue.id.casefold()):
                continue
            shown.append(
                (
                    r,
                    {
                        "ticket": t.key if t else r.ticket.id,
                        "subject": t.subject if t else None,
                        "ticket_status": t.status if t else None,
                        "issue": key,
                        "issue_state": i.state_name if i else None,
                        "tracker": r.issue.connector,
                        "origin": r.origin,
                        "since": str(r.created_at),
                        "active": r.active,
                    },
                )
            )
        out = [row for _, row in shown]
        if as_json:
            click.echo(json.dumps(out, indent=2))
            return
        if not out:
            click.echo("no links" + (f" to {issue}" if issue else "") + (f" for ticket {ticket}" if ticket else ""))
            return
        table = [
            (
                row["ticket"],
                _cut(row["subject"] or "?", 40),
                row["issue"],
                row["issue_state"] or "?",
                ORIGIN_WORDS.get(row["origin"], row["origin"]),
                stamp(r.created_at) + ("" if row["active"] else "  (ended)"),
            )
            for r, row in shown
        ]
        for line in _table(("TICKET", "SUBJECT", "ISSUE", "STATE", "LINKED VIA", "SINCE"), table):
            click.echo(line)


ORIGIN_WORDS = {"cli": "syncd link"}  # how a link was made, where its stored word is not plain


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _table(headers: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Aligned columns under a header line."""
    widths = [max(len(str(v)) for v in column) for column in zip(headers, *rows)]
    return ["  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip() for line in (headers, *rows)]


@main.command()
@click.argument("ticket")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@guarded
def history(obj: Context, ticket: str, as_json: bool) -> None:
    """The story of TICKET: links, issue moves, writes, in order (times in UTC)."""
    from mappings.review import stamp
    from syncd.records import Ref

    with obj.app(readonly=True) as app:
        ref = Ref(app.engine.helpdesk.name, _ticket_id(ticket))
        rows = app.store.history(ref)
        if not rows and app.store.get_snapshot(ref) is None:
            fail(f"ticket {ref.id} is not known to syncd: it has never read it (check the number; see `syncd links`)")
        if as_json:
            click.echo(json.dumps([{"at": str(r.at), "kind": r.kind, "summary": r.summary} for r in rows], indent=2))
            return
        if not rows:
            click.echo(f"nothing recorded for ticket {ref.id} yet")
        for r in rows:
            click.echo(f"{stamp(r.at)}  {r.kind:<12} {r.summary}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the same facts as JSON.")
@click.pass_obj
@guarded
def status(obj: Context, as_json: bool) -> None:
    """syncd's state at a glance; works while the daemon runs.

    \b
    Per connector: its state, last success (its last poll that went through),
    lag (how long the oldest write waiting for it has waited), cursor age
    (since its feed last brought something new) and last error. Then links,
    the outbox backlog, dead letters, quarantine, promises past due and
    broken, and the daemon's last reload. Times in UTC. The daemon serves the
    same as a page at http://<daemon.health_address>/ (loopback only).
    """
    from syncd.status import gather, render_text
    from syncd.store import open_store

    settings = obj.settings()
    with open_store(settings, readonly=True, clock=_now) as store:
        now = _now()
        facts = gather(store, settings, now)
    if as_json:
        click.echo(json.dumps(facts, indent=2))
    else:
        click.echo(render_text(facts, now), nl=False)


# -- outbox and quarantine -------------------------------------------------------------------------


@main.group()
def outbox() -> None:
    """Inspect and repair the outbox of pending writes."""


@outbox.command("list")
@click.option("--state", type=click.Choice(["pending", "sending", "done", "dead", "dropped"]))
@click.pass_obj
@guarded
def outbox_list(obj: Context, state: str | None) -> None:
    """List outbox actions (default: all not yet done)."""
    with obj.app(readonly=True) as app:
        if state is None:
            rows = sorted(
                (r for s in ("pending", "sending", "dead") for r in app.store.list_outbox(s, limit=1000)),
                key=lambda r: r.id,
            )
        else:
            rows = app.store.list_outbox(state)
        if not rows:
            click.echo("outbox empty")
        for r in rows:
            error = r.last_error or ""
            if len(error) > 80:
                error = error[:79].rstrip() + f"… (syncd outbox show {r.id})"
            click.echo(
                f"{r.id:>6} {r.state:<8} {r.op:<14} {r.connector}:{r.target:<10} attempts={r.attempts} {error}".rstrip()
            )


@outbox.command("show")
@click.argument("action_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@guarded
def outbox_show(obj: Context, action_id: int, as_json: bool) -> None:
    """Everything about one action: what it writes where, its attempts and its whole last error."""
    from mappings.review import stamp
    from syncd.records import format_time

    with obj.app(readonly=True) as app:
        row = app.store.get_action(action_id)
    if row is None:
        fail(f"no action with id {action_id} (see: syncd outbox list)", EXIT_USAGE)
    if as_json:
        data = {
            "id": row.id,
            "state": row.state,
            "op": row.op,
            "connector": row.connector,
            "target": row.target,
            "key": row.key,
            "attempts": row.attempts,
            "maybe_applied": row.maybe_applied,
            "created_at": format_time(row.created_at),
            "next_attempt_at": format_time(row.next_attempt_at),
            "done_at": format_time(row.done_at),
            "last_error": row.last_error,
            "payload": row.payload,
            "result": row.result,
        }
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    lines = [
        ("action", f"{row.id} ({row.state})"),
        ("write", f"{row.op} to {row.connector}:{row.target}"),
        ("key", row.key),
        ("created", stamp(row.created_at)),
        ("attempts", str(row.attempts)),
    ]
    if row.state in ("pending", "sending"):
        lines.append(("next attempt", stamp(row.next_attempt_at)))
    if row.done_at is not None:
        lines.append(("finished", stamp(row.done_at)))
    if row.maybe_applied:
        lines.append(("may have landed", "yes: the next attempt looks for its marker first"))
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        click.echo(f"{name.ljust(width)}  {value}")
    click.echo("last error:" + ("" if row.last_error else " none"))
    for line in (row.last_error or "").splitlines():
        click.echo(f"  {line}")
    click.echo("what it writes:")
    for line in json.dumps(row.payload, indent=2, ensure_ascii=False).splitlines():
        click.echo(f"  {line}")


@outbox.command("retry")
@click.argument("action_id", type=int)
@click.pass_obj
@guarded
def outbox_retry(obj: Context, action_id: int) -> None:
    """Send a dead action again at the next delivery.

    An escalation's issue create is not sent again as it was: its handoff is
    planned again against the current mapping files, as `syncd escalate`
    does, so a fixed route takes effect (unless the create may have landed
    before it failed: then it is retried as it is, looked for first)."""
    from syncd.writes import CreateIssue, stored

    app, deliver = _open_for_write(obj)
    with app:
        row = app.store.get_action(action_id)
        # A create that may have landed is retried as it is: delivery looks for its marker first.
        write = stored(row) if row is not None else None
        if (
            row is not None
            and isinstance(write, CreateIssue)
            and row.state in ("dead", "pending")
            and not row.maybe_applied
        ):
            click.echo(f"action {action_id} creates the issue of ticket {write.ticket}'s handoff:")
            _escalate(app, str(write.ticket), deliver)
            return
        if not app.store.retry_action(action_id):
            fail(f"no dead action with id {action_id} (see: syncd outbox list --state dead)", EXIT_USAGE)
        click.echo(f"action {action_id} will be retried")


@main.command()
@click.argument("ticket")
@click.pass_obj
@guarded
def escalate(obj: Context, ticket: str) -> None:
    """Hand TICKET over to product again, against the current mapping files.

    For a follow-up whose issue the tracker refused to create (a bad route, a
    missing permission: the agent got a note saying so): after the route is
    fixed, this drops the refused create and plans a new one to wherever the
    route sends it now. Refused, changing nothing, when the ticket has no
    route, is not flagged, is already linked or is not complete.
    """
    app, deliver = _open_for_write(obj)
    with app:
        _escalate(app, _ticket_id(ticket), deliver)


def _escalate(app: Any, ticket_id: str, deliver: bool) -> None:
    outcome = app.engine.escalate(ticket_id)
    before = sorted(set(outcome.earlier_places))
    was = f" (instead of {', '.join(before)})" if before and before != [outcome.place] else ""
    click.echo(
        f"ticket {ticket_id}: handoff planned again by route {outcome.route!r}: "
        f"the issue is created in {outcome.tracker} {outcome.place}{was}"
    )
    if deliver:
        report = app.engine.deliver()
        click.echo(
            f"delivered {report.done} write(s)" + (f", {report.failed + report.dead} failed" if report.errors else "")
        )
        if report.errors:
            sys.exit(EXIT_FAILED)
    else:
        click.echo("the running daemon will deliver the writes")


@outbox.command("drop")
@click.argument("action_id", type=int)
@click.pass_obj
@guarded
def outbox_drop(obj: Context, action_id: int) -> None:
    """Give up on an action; later writes to the same ticket or issue go on."""
    app, _ = _open_for_write(obj)
    with app:
        if not app.store.drop_action(action_id):
            fail(f"no unfinished action with id {action_id} (see: syncd outbox list)", EXIT_USAGE)
        click.echo(f"action {action_id} dropped")


@main.group()
def quarantine() -> None:
    """Records a connector could not read, kept with their reason."""


@quarantine.command("list")
@click.pass_obj
@guarded
def quarantine_list(obj: Context) -> None:
    """List quarantined records."""
    with obj.app(readonly=True) as app:
        rows = app.store.list_quarantine()
        if not rows:
            click.echo("quarantine empty")
        for r in rows:
            click.echo(f"{r.id:>5} {r.connector}:{r.record_id}  {r.reason}")


@quarantine.command("retry")
@click.argument("quarantine_id", type=int)
@click.pass_obj
@guarded
def quarantine_retry(obj: Context, quarantine_id: int) -> None:
    """Read record QUARANTINE_ID again; release it if it reads now.

    A released record is forgotten by the quarantine: its next change is
    processed like any other. One that still cannot be read stays, with the
    new reason.
    """
    from connectors.base import Helpdesk, Tracker
    from syncd.errors import Gone, NotFound, PayloadError

    app, _ = _open_for_write(obj)
    with app:
        row = next((r for r in app.store.list_quarantine() if r.id == quarantine_id), None)
        if row is None:
            fail(f"no quarantined record with id {quarantine_id} (see: syncd quarantine list)", EXIT_USAGE)
        connector = app.connectors.get(row.connector)
        label = f"{row.connector}:{row.record_id}"
        if connector is not None and row.record_id:
            try:
                if isinstance(connector, Helpdesk):
                    connector.get_ticket(row.record_id)
                else:
                    assert isinstance(connector, Tracker)
                    connector.get_issue(row.record_id)
            except PayloadError as exc:
                app.store.quarantine(row.connector, row.record_id, str(exc), exc.payload)
                fail(f"quarantine {quarantine_id}: {label} still cannot be read: {exc}")
            except (NotFound, Gone):
                pass  # gone from the service: nothing left to wait for
        app.store.resolve_quarantine(quarantine_id)
        click.echo(f"quarantine {quarantine_id}: {label} released; its next change is processed")


# -- the store ---------------------------------------------------------------------------------------


@main.group("store")
def store_group() -> None:
    """Back up the state store."""


@store_group.command("backup")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.pass_obj
@guarded
def store_backup(obj: Context, file: Path, force: bool) -> None:
    """Copy the store to FILE (mode 0600), safely while the daemon runs.

    SQLite's online backup takes the store as of one commit; the copy is
    checked (quick check, schema version) before it replaces FILE. To restore:
    stop syncd, move the store and its -wal/-shm files aside, copy FILE to
    the store path, start syncd (see README, "Backup and restore").
    """
    from syncd.store import backup

    settings = obj.settings()
    if settings.store.url:
        _usage(
            "store.url is a PostgreSQL database: back it up with PostgreSQL's own tools "
            "(pg_dump, or your provider's backups; see docs/scaling.md)"
        )
    source = settings.store_path
    if not source.exists():
        _usage(f"{source} does not exist: no store to back up yet")
    target = file.expanduser().absolute()
    if target.is_dir():
        _usage(f"{file} is a directory; give the backup's file name, e.g. {target / 'syncd-backup.db'}")
    if not target.parent.is_dir():
        _usage(f"{file}: directory {target.parent} does not exist; create it first")
    companions = {source.name + suffix for suffix in ("", "-wal", "-shm", "-journal", ".lock")}
    if target.name in companions and target.parent.resolve() == source.parent.resolve():
        _usage(f"{file} is the store itself (or one of its files); write the backup elsewhere")
    if (target.exists() or target.is_symlink()) and not force:
        _usage(f"{file} exists; give another name, or --force to replace it")
    info = backup(source, target)
    click.echo(
        f"backed up {source} to {info.path} (schema {info.schema_version}, {info.links} active link(s), "
        f"{info.size} bytes)"
    )


@store_group.command("migrate")
@click.option("--to", "url", required=True, help="PostgreSQL database: postgresql://USER@HOST:PORT/DB (no password)")
@click.option("--schema", default=None, help="Put the tables in this schema (default: store.schema, else the user's).")
@click.option(
    "--from",
    "source",
    type=click.Path(path_type=Path),
    default=None,
    help="The SQLite store to copy (default: store.path).",
)
@click.pass_obj
@guarded
def store_migrate(obj: Context, url: str, schema: str | None, source: Path | None) -> None:
    """Copy the SQLite store into an empty PostgreSQL database, checked.

    Stop syncd first (the copy takes the store's lock). Every table is copied
    in one transaction; before it commits, each table's row count is compared
    and a random sample of rows is read back and compared field by field. The
    password comes from SYNCD_STORE__PASSWORD or store.password_file. Then set
    store.url (and store.schema) in the config and start syncd (docs/scaling.md).
    """
    from syncd.store import PostgresStore, SQLiteStore, copy_store, is_postgres_url

    settings = obj.settings()
    if not is_postgres_url(url):
        _usage(f"--to {url!r}: give a PostgreSQL URL, postgresql://USER@HOST:PORT/DATABASE")
    if re.search(r"://[^/@:]*:[^/@]+@", url):
        _usage("--to: leave the password out of the URL; set SYNCD_STORE__PASSWORD or store.password_file")
    path = (source or settings.store_path).expanduser().absolute()
    if not path.exists():
        _usage(f"{path} does not exist: no SQLite store to copy")
    password = settings.store.read_password()
    with (
        SQLiteStore(path) as sqlite,
        PostgresStore(url, password=password, schema=schema or settings.store.schema_name, pool_size=2) as target,
    ):
        report = copy_store(sqlite, target)
        where = target.location
    total = sum(report.counts.values())
    click.echo(f"copied {path} to {where}: {total} rows in {len(report.counts)} tables, counts equal")
    for table, count in report.counts.items():
        click.echo(f"  {table}: {count}")
    click.echo(f'{report.sampled} sampled rows read back equal. Now set store.url = "{url}" and start syncd.')


# -- promises and the review ------------------------------------------------------------------


def _now():
    """The current time (UTC); tests replace it."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


def _usage(message: str) -> None:
    fail(message, EXIT_USAGE)


def _existing_store(settings: Any, *, readonly: bool = False, shared: bool = False):
    """The store, for a command that needs what syncd has already seen (never creates one)."""
    from syncd.errors import StoreError
    from syncd.store import open_store

    if not settings.store.url and not settings.store_path.exists():
        raise StoreError(f"{settings.store_path} does not exist: no store yet; run `syncd once` first")
    return open_store(settings, readonly=readonly, shared=shared, clock=lambda: _now())


def _tracker_kinds(settings: Any) -> dict[str, str]:
    return {name: settings.connectors[name].kind for name in settings.sync.trackers if name in settings.connectors}


def _local(at: Any, calendar: Any) -> str:
    local = calendar.local(at)
    return f"{local:%Y-%m-%d %H:%M} {calendar.time_zone}"


def _calendar(route: Any) -> Any:
    """The calendar of the route's promise rule (UTC, every day, all day without one)."""
    from mappings.calendar import ALWAYS

    return route.promises.calendar if route is not None and route.promises is not None else ALWAYS


def _deadline(due: str | None, within: str | None, route: Any, now: Any) -> Any:
    """The promise's deadline from --due or --within, in the route's promise calendar."""
    from datetime import date, datetime

    from mappings.calendar import ALWAYS, Duration

    rule = route.promises if route else None
    calendar = _calendar(route)
    where = f"route {route.name!r}" if route else "the ticket (no route takes it)"
    if due is not None:
        text = due.strip()
        try:
            if len(text) == 10:
                at = calendar.end_of_day(date.fromisoformat(text))  # "by that day": at its close of business
            elif "T" in text and len(text) == 16:
                at = datetime.fromisoformat(text).replace(tzinfo=calendar.tz)
            else:
                raise ValueError
        except ValueError:
            _usage(
                f"--due: not a date (got {due!r}); write YYYY-MM-DD or YYYY-MM-DDTHH:MM "
                f"(local time in {calendar.time_zone})"
            )
        if at <= now:
            _usage(f"--due: {_local(at, calendar)} has already passed; give a later date")
        return at
    if within is not None:
        try:
            span = Duration.parse(within)
        except ValueError as exc:
            _usage(f"--within: {exc}")
        if span.business and (rule is None or rule.calendar == ALWAYS):
            _usage(
                f"--within: {within!r} counts business time, but {where} has no promise rule with a "
                'calendar; write calendar time ("3 days", "8 hours") or use --due'
            )
        return calendar.add(now, span)
    return None


@main.group()
def promise() -> None:
    """Promises made to customers: add one by hand, list, cancel."""


@promise.command("add")
@click.argument("ticket")
@click.argument("what")
@click.option(
    "--due",
    metavar="YYYY-MM-DD[THH:MM]",
    help="Tell the customer by then (a date: its close of business), in the route's time zone.",
)
@click.option("--within", metavar="DURATION", help='Tell the customer within this, e.g. "2 business days".')
@click.option("--when-resolved", is_flag=True, help="Tell the customer when the linked work resolves.")
@click.option("--owner", metavar="NAME", help="Who keeps it (default: the ticket's assignee).")
@click.option("--route", "route_name", metavar="NAME", help="Use this route's calendar (default: the ticket's).")
@click.pass_obj
@guarded
def promise_add(
    obj: Context,
    ticket: str,
    what: str,
    due: str | None,
    within: str | None,
    when_resolved: bool,
    owner: str | None,
    route_name: str | None,
) -> None:
    """Record that the customer of TICKET was promised WHAT.

    Give when: --due, --within, or --when-resolved (which may come with one
    of the other two: news when it ships, by then at the latest). Works while
    the daemon runs; the daemon then tracks the promise.
    """
    from mappings.promises import ISSUE_RESOLVED, new_promise
    from syncd.app import handoff_mappings
    from syncd.records import Event, Ref, Ticket, format_time
    from syncd.report import check_route

    if due is not None and within is not None:
        _usage("--due and --within both give a deadline; give one of them")
    if due is None and within is None and not when_resolved:
        _usage('say when the customer hears: --due YYYY-MM-DD[THH:MM], --within "2 business days" or --when-resolved')
    if not what.strip():
        _usage('WHAT must not be empty; say what the customer was promised, e.g. "an update on the fix"')
    ticket_id = _ticket_id(ticket)
    settings = obj.settings()
    mappings = handoff_mappings(settings)
    check_route(mappings, route_name)
    now = _now()
    with _existing_store(settings, shared=True) as store:
        ref = Ref(settings.sync.helpdesk, ticket_id)
        snapshot = store.get_snapshot(ref)
        if not isinstance(snapshot, Ticket):
            fail(f"ticket {ticket_id} is not known to syncd yet; run `syncd once` first, or check the id")
        route = mappings.route(route_name) if route_name else mappings.route_for(snapshot)
        due_at = _deadline(due, within, route, now)
        issues = [row.issue for row in store.links_for_ticket(ref)]
        made = new_promise(
            ref,
            what.strip(),
            now,
            origin="cli",
            issues=issues,
            owner=owner or snapshot.assignee_id,
            due_at=due_at,
            trigger=ISSUE_RESOLVED if when_resolved else None,
            key=(format_time(now),),
        )
        when = []
        if due_at is not None:
            when.append(f"by {_local(due_at, _calendar(route))}")
        if when_resolved:
            when.append("when the linked work resolves")
        summary = f"{snapshot.key}: promised {made.what} ({', '.join(when)})"
        with store.transaction():
            store.put_promise(made)
            store.add_event(
                Event(
                    "promise",
                    summary,
                    ref,
                    None,
                    {
                        "promise": made.id,
                        "what": made.what,
                        "due_at": format_time(due_at),
                        "trigger": made.trigger,
                        "origin": "cli",
                        "owner": made.owner,
                    },
                )
            )
    click.echo(
        f"promise {made.id[:10]} {summary.split(': ', 1)[1]}"
        + (f", {len(issues)} linked issue(s)" if issues else ", no linked issue yet")
        + (f", owner {owner or snapshot.assignee_name or made.owner}" if made.owner else ", no owner")
    )


def _promise_dict(p: Any, key: str | None, names: dict[str, str]) -> dict[str, Any]:
    from syncd.records import format_time

    return {
        "id": p.id,
        "ticket": key or p.ticket.id,
        "what": p.what,
        "state": p.state.value,
        "due_at": format_time(p.due_at),
        "trigger": p.trigger,
        "owner": p.owner,
        "owner_name": names.get(p.owner, p.owner) if p.owner else None,
        "origin": p.origin,
        "rule": p.rule,
        "issues": [str(i) for i in p.issues],
        "created_at": format_time(p.created_at),
        "history": [{"state": c.state.value, "at": format_time(c.at), "reason": c.reason} for c in p.history],
    }


@promise.command("list")
@click.option("--ticket", metavar="ID", help="Only this ticket's promises.")
@click.option("--state", metavar="STATE", help="Only promises in this state (open, due, kept, broken, cancelled).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@guarded
def promise_list(obj: Context, ticket: str | None, state: str | None, as_json: bool) -> None:
    """List promises, oldest first: deadlines in the time zone of the ticket's route, owners by name."""
    from mappings.promises import owner_names
    from mappings.review import stamp
    from syncd.app import handoff_mappings
    from syncd.records import PromiseState, Ref, Ticket

    states = [s.value for s in PromiseState]
    if state is not None and state not in states:
        _usage(f"--state: unknown state {state!r}; write one of {', '.join(states)}")
    settings = obj.settings()
    mappings = handoff_mappings(settings)
    ref = Ref(settings.sync.helpdesk, _ticket_id(ticket)) if ticket else None
    with _existing_store(settings, readonly=True) as store:
        rows = store.list_promises(state=state, ticket=ref)
        snaps = store.get_snapshots({p.ticket for p in rows})
    tickets = {r: t for r, t in snaps.items() if isinstance(t, Ticket)}
    keys = {r: getattr(snaps.get(r), "key", None) for r in {p.ticket for p in rows}}
    names = owner_names(tickets.values())
    calendars = {r: _calendar(mappings.route_for(t)) for r, t in tickets.items()}
    if as_json:
        click.echo(json.dumps([_promise_dict(p, keys[p.ticket], names) for p in rows], indent=2))
        return
    if not rows:
        click.echo("no promises")
        return
    table = []
    for p in rows:
        calendar = calendars.get(p.ticket) or _calendar(None)
        when = " and ".join(
            filter(
                None, [f"by {stamp(p.due_at, calendar)}" if p.due_at else None, "when resolved" if p.trigger else None]
            )
        )
        owner = names.get(p.owner, p.owner) if p.owner else "—"
        table.append((p.id[:10], p.state.value, keys[p.ticket] or p.ticket.id, p.what, when, owner))
    for line in _table(("ID", "STATE", "TICKET", "PROMISED", "WHEN", "OWNER"), table):
        click.echo(line)


@promise.command("cancel")
@click.argument("promise_id", metavar="ID_PREFIX")
@click.option("--reason", default="cancelled by hand", show_default=True, help="Kept in the promise's history.")
@click.pass_obj
@guarded
def promise_cancel(obj: Context, promise_id: str, reason: str) -> None:
    """Withdraw a promise (it then counts neither kept nor broken)."""
    from mappings.promises import on_cancel
    from syncd.records import Event

    settings = obj.settings()
    with _existing_store(settings, shared=True) as store:
        found = store.find_promise(promise_id)
        if found is None:
            _usage(f"no promise with an id starting {promise_id!r} (see: syncd promise list)")
        cancelled = on_cancel(found, _now(), reason)
        if cancelled is found:
            fail(f"promise {found.id[:10]} is already {found.state.value}; only open or due promises can be cancelled")
        with store.transaction():
            store.put_promise(cancelled)
            store.add_event(
                Event(
                    "promise",
                    f"promise cancelled: {found.what} ({reason})",
                    found.ticket,
                    None,
                    {"promise": found.id, "state": "cancelled", "reason": reason},
                )
            )
    click.echo(f"promise {found.id[:10]} cancelled")


FORMATS = ("table", "json", "csv")


@main.command()
@click.option("--since", metavar='DATE|"7 days"', help="Count what happened since then (default: all time).")
@click.option("--route", "route_name", metavar="NAME", help="Only this route's follow-ups.")
@click.option(
    "--format",
    "fmt",
    metavar="FORMAT",
    help="table, json or csv (default: table on a terminal, else json; for --output, by its suffix).",
)
@click.option("--output", "-o", metavar="FILE", help="Write the report to FILE instead of stdout.")
@click.pass_obj
@guarded
def report(obj: Context, since: str | None, route_name: str | None, fmt: str | None, output: str | None) -> None:
    """The review: stale work, owner gaps, blocked, promises due and broken, handoff limbo, rejected, rework.

    Reads the store only, so it works while the daemon runs.
    """
    from mappings.review import render
    from syncd.app import handoff_mappings
    from syncd.report import check_route, parse_since
    from syncd.report import review as build

    if fmt is not None and fmt not in FORMATS:
        _usage(f"--format: unknown format {fmt!r}; write table, json or csv")
    settings = obj.settings()
    mappings = handoff_mappings(settings)
    check_route(mappings, route_name)
    now = _now()
    route = mappings.route(route_name) if route_name else None
    start = parse_since(since, now, _calendar(route)) if since else None
    if fmt is None:
        suffix = Path(output).suffix.lower().lstrip(".") if output else ""
        if output:
            fmt = suffix if suffix in ("json", "csv") else "table"
        else:
            fmt = "table" if sys.stdout.isatty() else "json"
    with _existing_store(settings, readonly=True) as store:
        text = render(build(store, mappings, _tracker_kinds(settings), now=now, since=start, route=route_name), fmt)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        _usage(f"--output: cannot write {output} ({exc.strerror}); check the path")
    click.echo(f"report written to {output}")


def _ticket_id(text: str) -> str:
    """Accept 123, #123 or a ticket URL."""
    text = text.strip().lstrip("#")
    tail = text.rstrip("/").rsplit("/", 1)[-1]
    if not tail.isdigit():
        raise ValueError(f"not a ticket id: {text!r} (give the number, #number or the ticket URL)")
    return tail


if __name__ == "__main__":  # pragma: no cover
    main()
