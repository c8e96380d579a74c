"""``svgrft deploy`` / ``svgrft undeploy`` / ``svgrft deployments list``: serve a trained model on demand.

The logic lives in :mod:`svgrft.workflow.deploy`; this module parses options and prints.
"""

from __future__ import annotations

from typing import Optional

import typer

from svgrft.cli import _common as c
from svgrft.core.plural import plural, plural_word

deployments_app = typer.Typer(no_args_is_help=True, help="List on-demand deployments (and svgrft's TTLs).")


def _e(value) -> str:
    from rich.markup import escape

    return escape(str(value))


class StateDisplay:
    """A one-line live status on stderr while a deployment starts (plain lines without a terminal)."""

    def __init__(self, what: str):
        self.what = what
        self.last = None
        self.status = None
        if not c.state.quiet and c.is_interactive():
            self.status = c.err_console().status(f"{what}: starting…")
            self.status.start()

    def __call__(self, d) -> None:
        st = d.state
        replicas = d.replica_count
        line = f"{self.what}: {st}" + (f", {plural(replicas, 'replica')}" if replicas is not None else "")
        if self.status is not None:
            self.status.update(_e(line))
        elif line != self.last:
            c.info(line)
        self.last = line

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


def print_plan(plan, *, dry_run: bool) -> None:
    import json

    from svgrft.workflow.deploy import cost_line

    head = "Would create" if dry_run else "Creating"
    where = (
        f"a deployment of {plan.target.model}"
        if plan.mode == "merge"
        else f"a deployment of {plan.deployed_base} with addons, then load {plan.target.model} onto it"
    )
    c.info(f"{head} {where} as {plan.deployment_id}")
    c.info(cost_line(plan))
    for note in plan.notes:
        c.info(f"note: {note}")
    if dry_run:
        c.info("request:")
        for r in plan.request()["requests"]:
            c.out(f"{r['method']} {r['path']}")
            c.out(json.dumps(r["body"], indent=2))


@c.command
def deploy_cmd(
    ref: str = typer.Argument(
        ..., metavar="JOB_ID|MODEL", help="An RFT job id (its output model is deployed) or a model name."
    ),
    ttl: Optional[str] = c.setting_option("deploy.ttl"),
    mode: Optional[str] = c.setting_option("deploy.mode"),
    accelerator: Optional[str] = c.setting_option("deploy.accelerator_type"),
    accelerator_count: Optional[int] = c.setting_option("deploy.accelerator_count", min=1, max=8),
    shape: Optional[str] = typer.Option(None, "--shape", help="A Fireworks deployment shape (replaces --accelerator)."),
    deployment_id: Optional[str] = typer.Option(None, "--id", help="Deployment id (default svgrft-<model id>)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait until READY (default) or return at once."),
    timeout: Optional[float] = c.setting_option("deploy.timeout", min=1.0),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the request and the cost; no key, no network."),
    yes: bool = c.YES_OPT,
    json_out: bool = c.JSON_OPT,
) -> None:
    """Deploy a trained model on an on-demand GPU, wait until READY and print the model string to call.

    Shows the hourly cost first and asks (or --yes). svgrft records a TTL (--ttl, default 2h): `svgrft
    deployments list` flags expired deployments and `svgrft undeploy --expired` deletes them; the deployment
    also scales to zero replicas when idle. Ctrl-C while waiting deletes it again. Remove it with
    `svgrft undeploy JOB_ID`.
    """
    from svgrft.workflow import deploy as wf

    settings = c.settings()  # --ttl, --mode, --accelerator, --accelerator-count and --timeout are in here
    if dry_run:
        plan = wf.plan_deployment(settings, wf.assumed_target(settings, ref), deployment_id=deployment_id, shape=shape)
        if json_out:
            c.emit_json({"dry_run": True, **plan.describe()})
            return
        print_plan(plan, dry_run=True)
        c.info(f"model string (after deploying): {plan.model_string}")
        return

    from svgrft.clients.fireworks import make_client

    fw = make_client(settings)
    target = wf.resolve_target(fw, ref)
    plan = wf.plan_deployment(settings, target, deployment_id=deployment_id, shape=shape, account=fw.account_id)
    if deployment_id is None:
        served = wf.serving_string(fw, target.model)
        if served:
            c.info(f"{target.model} is already deployed: nothing to create")
            _print_served(served, settings, json_out, {"created": False, "model": target.model})
            return
    print_plan(plan, dry_run=False)
    cost = f" (about ${plan.cost_per_hour:.2f}/hour while running)" if plan.cost_per_hour is not None else ""
    c.confirm(f"start an on-demand deployment {plan.deployment_id}{cost}", yes)
    display = StateDisplay(f"deployment {plan.deployment_id}")
    try:  # on an error or Ctrl-C the workflow deletes what it created and says so
        dep = wf.deploy(
            fw,
            plan,
            timeout=settings.deploy.timeout,
            poll_interval=settings.deploy.poll_interval,
            wait=wait,
            on_update=display,
            progress=lambda m: (display.stop(), c.info(m)),
        )
    finally:
        display.stop()
    extra = {
        "created": dep.created,
        "model": target.model,
        "deployment": dep.deployment.name,
        "state": dep.deployment.state,
        "expires": (dep.record or {}).get("expires"),
        "ttl": wf.fmt_duration(plan.ttl_seconds),
    }
    if dep.record:
        c.info(
            f"TTL {wf.fmt_duration(plan.ttl_seconds)}: it expires at {dep.record['expires']} (`svgrft undeploy "
            f"--expired` then deletes it); remove it now with `svgrft undeploy {plan.deployment_id}`"
        )
    if not wait:
        c.info(f"not waiting: watch it with `svgrft deployments list` (state {dep.deployment.state})")
    _print_served(dep.model_string, settings, json_out, extra)


def _print_served(model_string: str, settings, json_out: bool, extra: dict) -> None:
    from svgrft.redact import redact
    from svgrft.workflow.deploy import snippet

    snip = snippet(model_string, settings)
    if json_out:
        c.emit_json({"model_string": model_string, **extra, "snippets": snip})
        return
    c.out(model_string)
    if c.state.quiet:
        return
    con = c.err_console()

    def raw(line: str) -> None:  # never wrapped: the snippets must survive copy and paste
        con.print(redact(line), soft_wrap=True, markup=False, highlight=False)

    raw("call it with curl:")
    raw("  " + snip["curl"])
    raw("or with openai:")
    for line in snip["python"].splitlines():
        raw("  " + line)
    raw(f"or score it: svgrft eval --model {model_string.split('#', 1)[0]}")


@deployments_app.command("list")
@c.command
def list_cmd(json_out: bool = c.JSON_OPT) -> None:
    """List the account's on-demand deployments: state, models served, and svgrft's TTL (EXPIRED ones should go)."""
    from svgrft.clients.fireworks import make_client
    from svgrft.workflow import deploy as wf

    fw = make_client(c.settings())
    items = wf.list_deployments(fw)
    expired = [d for d in items if d["expired"]]
    if json_out:
        c.emit_json({"deployments": items})
    elif not items:
        c.info(f"No deployments in account {fw.account_id}.")
    else:
        from rich.table import Table

        t = Table(title=f"deployments ({fw.account_id})", pad_edge=False)
        t.add_column("id", no_wrap=True, min_width=max(len(d["id"]) for d in items))
        t.add_column("state", no_wrap=True)
        t.add_column("replicas", justify="right", no_wrap=True)
        t.add_column("serves", overflow="fold", min_width=12)
        t.add_column("expires (svgrft)", no_wrap=True)
        for d in items:
            serves = ", ".join([d["base_model"] or "?"] + [f"+ {m}" for m in d["loras"]])
            if d["expired"]:
                exp = "[red]EXPIRED[/red]"
            elif d["expires_in"] is not None:
                exp = f"in {wf.fmt_duration(d['expires_in'])}"
            else:
                exp = "-"
            t.add_row(
                _e(d["id"]), _e(d["state"]), _e(d["replicas"] if d["replicas"] is not None else "-"), _e(serves), exp
            )
        c.print_table(t)
    if expired:
        c.warn(
            f"{plural(len(expired), 'deployment')} past their svgrft TTL ({', '.join(d['id'] for d in expired)}): "
            f"delete them with `svgrft undeploy --expired`"
        )


@c.command
def undeploy_cmd(
    ref: Optional[str] = typer.Argument(
        None, metavar="NAME|JOB_ID", help="A deployment id/name, or a job id or model (every deployment of it)."
    ),
    expired: bool = typer.Option(False, "--expired", help="Delete every svgrft deployment past its TTL."),
    yes: bool = c.YES_OPT,
    json_out: bool = c.JSON_OPT,
) -> None:
    """Delete on-demand deployments (unloading LoRAs first) so they stop billing.

    By JOB_ID or model: every deployment of that model is deleted; from a deployment it only shares as a
    loaded LoRA (not svgrft's, or hosting other LoRAs) just the LoRA is unloaded. Deleting a deployment
    svgrft did not create asks first (or --yes)."""
    from svgrft.clients.fireworks import make_client
    from svgrft.errors import UsageError
    from svgrft.workflow import deploy as wf

    if expired and ref:
        raise UsageError("give either NAME|JOB_ID or --expired, not both", hint="e.g. svgrft undeploy --expired")
    fw = make_client(c.settings())
    items = wf.undeploy_targets(fw, ref, expired=expired)
    if not items:
        if expired:
            c.info("No svgrft deployment is past its TTL.")
            if json_out:
                c.emit_json({"deleted": [], "failed": []})
            return
        raise c.SvgrftError(f"nothing is deployed for {ref!r}", hint="see `svgrft deployments list`")
    foreign = [d["id"] for d in items if not d["svgrft"] and not d.get("unload")]
    if foreign:
        c.confirm(f"delete {plural_word(len(foreign), 'deployment')} svgrft did not create: {', '.join(foreign)}", yes)
    done, failed = wf.undeploy(fw, items, progress=c.info)
    if json_out:
        c.emit_json({"deleted": done, "failed": [{"name": n, "error": m} for n, m in failed]})
    else:
        for name in done:
            c.out(name)
    if failed:
        name, msg = failed[0]
        raise c.SvgrftError(
            f"{len(failed)} of {plural(len(items), 'deployment')} could not be deleted: {msg}",
            hint=f"run `svgrft undeploy {name.rsplit('/', 1)[-1]}` again, or delete it in the "
            f"dashboard (https://app.fireworks.ai/dashboard/deployments)",
        )
