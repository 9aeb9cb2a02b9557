"""The workspace commands: `serve` runs the web app, `user add|list|remove` manage who may sign in."""

from __future__ import annotations

import sys

import click

from complaint_triage.cli.common import UsageProblem, config_option, open_store, settings_for
from complaint_triage.errors import ConfigError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port to listen on."
)
@click.option(
    "--secure-cookies",
    is_flag=True,
    help="Mark the session cookie Secure even when the request reached us over plain HTTP (TLS ends at a proxy).",
)
@click.option(
    "--forwarded-allow-ips",
    default="127.0.0.1",
    show_default=True,
    help="Proxies whose X-Forwarded-Proto/For are trusted (then https requests get Secure cookies).",
)
@config_option
def serve(host: str, port: int, secure_cookies: bool, forwarded_allow_ips: str, config: str | None) -> None:
    """Serve the team workspace (queue, cases, sources, summaries, JSON API) on the configured store."""
    import uvicorn

    from complaint_triage.web import auth
    from complaint_triage.web.app import create_app

    settings = settings_for(config)
    try:
        secret = auth.session_secret()
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from None
    app = create_app(settings, secret, secure_cookies)
    uvicorn.run(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        log_level="info",
    )


@click.group()
def user() -> None:
    """Manage the people who may sign in to the workspace."""


def _password() -> str:
    """The new password: prompted twice on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise UsageProblem("no password on standard input")
    return line


@user.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["admin", "member"]),
    default="member",
    show_default=True,
    help="Admins see every account and may replay failures.",
)
@click.option("--accounts", help="Comma-separated sources (seller accounts) a member may see; default: all.")
@config_option
def user_add(name: str, role: str, accounts: str | None, config: str | None) -> None:
    """Add a user; the password is read from standard input when it is not a terminal."""
    from complaint_triage.store.users import add_user, check_username
    from complaint_triage.web.auth import hash_password

    store = open_store(settings_for(config))
    check_username(name)
    limited = [a.strip() for a in accounts.split(",") if a.strip()] if accounts else None
    add_user(store, name, hash_password(_password()), role, limited)
    store.close()
    click.echo(
        f"user {name} added ({role}{': ' + ', '.join(sorted(set(limited))) if limited else ''})", err=True
    )


@user.command("list")
@config_option
def user_list(config: str | None) -> None:
    """List the users with their role and accounts."""
    from complaint_triage.store.users import list_users

    store = open_store(settings_for(config))
    for person in list_users(store):
        click.echo(
            f"{person.username}\t{person.role}\t{','.join(person.accounts) if person.accounts else 'all accounts'}"
        )
    store.close()


@user.command("remove")
@click.argument("name")
@config_option
def user_remove(name: str, config: str | None) -> None:
    """Remove a user; their open sessions stop working at their next request."""
    from complaint_triage.store.users import remove_user

    store = open_store(settings_for(config))
    remove_user(store, name)
    store.close()
    click.echo(f"user {name} removed", err=True)


def register(group: click.Group) -> None:
    """Add `serve` and `user` to the command group."""
    group.add_command(serve)
    group.add_command(user)
