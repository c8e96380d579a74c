"""``svgrft secrets push``: the keys the evaluator needs, as Fireworks secrets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

import typer

from svgrft.cli import _common as c

if TYPE_CHECKING:
    from svgrft.config import Settings

app = typer.Typer(no_args_is_help=True, help="Push API keys the evaluator needs as Fireworks secrets.")


def push_secrets(settings: Settings, keys: Sequence[str], dry_run: bool = False, client=None) -> list[dict]:
    """Create or update one Fireworks secret per key name. Returns one row per key (values masked)."""
    from svgrft.clients.fireworks import make_client, secret_id_for
    from svgrft.errors import ConfigError
    from svgrft.redact import mask

    names = [k.strip() for k in keys if k.strip()]
    if not names:
        raise ConfigError("no secret names to push", hint="pass --key NAME or set secrets.keys in the config")
    missing = [k for k in names if not settings.secret(k)]
    if missing and dry_run:  # the plan is still shown: what would be pushed, and what is not set
        return [
            {
                "key": k,
                "secret": secret_id_for(k),
                "value": mask(settings.secret(k)) if k not in missing else "(not set)",
                "action": "create or update (dry run: nothing sent)"
                if k not in missing
                else "not set: a real push would stop here",
            }
            for k in names
        ]
    if missing:
        raise ConfigError(
            f"{', '.join(missing)} not set, nothing was pushed",
            hint=f"set {missing[0]} in the environment or .env, or choose keys with --key",
        )
    rows = []
    if dry_run:
        for k in names:
            rows.append(
                {
                    "key": k,
                    "secret": secret_id_for(k),
                    "value": mask(settings.secret(k)),
                    "action": "create or update (dry run: nothing sent)",
                }
            )
        return rows
    client = client or make_client(settings)
    for k in names:
        name, action = client.upsert_secret(k, settings.secret(k))
        rows.append({"key": k, "secret": name, "value": mask(settings.secret(k)), "action": action})
    return rows


@app.command("push")
@c.command
def push(
    key: Optional[list[str]] = c.setting_option(
        "secrets.keys", "-k", metavar="NAME", note="Secret to push (repeatable):"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan with masked values; send nothing."),
    json_out: bool = c.JSON_OPT,
) -> None:
    """Create or update Fireworks secrets from the environment/.env (only the keys named, never all of .env)."""
    s = c.settings()
    rows = push_secrets(s, s.secrets.keys, dry_run=dry_run)
    unset = [r["key"] for r in rows if r["value"] == "(not set)"]
    if unset:
        c.warn(
            f"{', '.join(unset)} not set: `secrets push` without --dry-run would stop; set them in the "
            "environment or .env"
        )
    if json_out:
        c.emit_json({"dry_run": dry_run, "secrets": rows})
        return
    from rich.table import Table

    t = Table(title="Fireworks secrets" + (" (dry run)" if dry_run else ""))
    for col in ("key", "secret", "value", "action"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["key"], r["secret"], r["value"], r["action"])
    c.print_table(t)
