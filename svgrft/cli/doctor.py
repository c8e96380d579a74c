"""``svgrft doctor``: what the workflow needs, checked in one table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from svgrft.cli import _common as c
from svgrft.core.plural import plural

if TYPE_CHECKING:
    from svgrft.config import Settings

PACKAGES = ("typer", "rich", "fireworks-ai", "openai", "eval-protocol", "playwright", "python-dotenv", "defusedxml")


def _row(check: str, status: str, detail: str, hint: str = "") -> dict[str, str]:
    return {"check": check, "status": status, "detail": detail, "hint": hint}


def _packages() -> list[dict[str, str]]:
    from importlib.metadata import PackageNotFoundError, version

    rows = []
    for name in PACKAGES:
        try:
            rows.append(_row(f"package {name}", "ok", version(name)))
        except PackageNotFoundError:
            rows.append(_row(f"package {name}", "fail", "not installed", "pip install -e . (or pip install svgrft)"))
    return rows


def _chromium(settings: Settings) -> dict[str, str]:
    from svgrft.core.render import chromium_version, find_chromium
    from svgrft.errors import SvgrftError

    try:
        c.check_chromium_setting(settings)
        path = find_chromium(settings.render.chromium or None)
    except SvgrftError as e:
        return _row("headless Chromium", "fail", e.message, e.hint or "")
    ver = chromium_version(path) or "version unknown"
    return _row("headless Chromium", "ok", f"{path} ({ver})")


def _keys(settings: Settings) -> list[dict[str, str]]:
    from svgrft.redact import mask

    rows = []
    for name, why in (("FIREWORKS_API_KEY", "Fireworks control plane and policy"), ("OPENAI_API_KEY", "vision judge")):
        value = settings.secret(name)
        if value:
            rows.append(_row(f"key {name}", "ok", mask(value)))
        else:
            rows.append(
                _row(f"key {name}", "fail", f"not set (needed for the {why})", f"export {name}=... or add it to .env")
            )
    return rows


def _probe(name: str, url: str, key: str | None, timeout: float) -> dict[str, str]:
    from svgrft.clients.reachability import reach

    r = reach(url, key, timeout)
    if r.status is None:
        return _row(
            name, "fail", f"unreachable: {url} ({r.error})", "check the network, a proxy, or the base URL setting"
        )
    if r.status in (401, 403):
        return _row(name, "fail", f"{url} rejected the key (HTTP {r.status})", "check the API key")
    if r.status >= 500:
        return _row(name, "warn", f"{url} answered HTTP {r.status}", "the service may be degraded")
    return _row(name, "ok", f"{url} reachable (HTTP {r.status}, {r.ms:.0f} ms)")


def run_checks(settings: Settings, network: bool = True, timeout: float = 3.0) -> list[dict[str, str]]:
    rows = _packages()
    rows.append(_chromium(settings))
    cfg = settings.config_path
    rows.append(_row("config file", "ok", str(cfg) if cfg else "none (built-in defaults)"))
    env = settings.env_file
    rows.append(
        _row(
            ".env file",
            "ok" if settings.env_file_loaded else "warn",
            f"{env} loaded" if settings.env_file_loaded else f"{env} not found",
            "" if settings.env_file_loaded else "optional: put FIREWORKS_API_KEY and OPENAI_API_KEY in .env",
        )
    )
    rows.extend(_keys(settings))
    if network:
        fw_key = settings.secret("FIREWORKS_API_KEY")
        if fw_key:
            rows.append(_probe("Fireworks API", settings.fireworks.base_url + "/verifyApiKey", fw_key, timeout))
        else:
            rows.append(_row("Fireworks API", "skip", "no FIREWORKS_API_KEY to check with"))
        judge_base = settings.judge.base_url or "https://api.openai.com/v1"
        oa_key = settings.secret("OPENAI_API_KEY")
        if oa_key:
            rows.append(_probe("judge endpoint", judge_base + "/models", oa_key, timeout))
        else:
            rows.append(_row("judge endpoint", "skip", "no OPENAI_API_KEY to check with"))
    return rows


@c.command
def cmd(
    json_out: bool = c.JSON_OPT,
    network: bool = typer.Option(True, "--network/--no-network", help="Probe the Fireworks and judge endpoints."),
    timeout: float = typer.Option(3.0, "--timeout", help="Seconds per network probe."),
) -> None:
    """Check packages, headless Chromium, keys, .env and endpoints. Exit 1 when something required fails."""
    s = c.settings()
    rows = run_checks(s, network=network, timeout=timeout)
    failed = [r for r in rows if r["status"] == "fail"]
    if json_out:
        c.emit_json({"ok": not failed, "checks": rows})
    else:
        from rich.table import Table

        t = Table(title="svgrft doctor")
        for col in ("check", "status", "detail"):
            t.add_column(col, overflow="fold")
        style = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}
        for r in rows:
            t.add_row(r["check"], f"[{style.get(r['status'], '')}]{r['status']}[/]", r["detail"])
        c.print_table(t)
    if failed:
        first = failed[0]
        raise c.SvgrftError(
            f"{plural(len(failed), 'check')} failed: {', '.join(r['check'] for r in failed)}",
            hint=first["hint"] or "see the table above",
        )
