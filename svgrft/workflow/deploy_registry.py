"""svgrft's own record of the deployments it created, with their TTL: ``$SVGRFT_HOME/deployments.json``.

Fireworks no longer deletes a deployment at its ``expire_time`` (SDK 1.2.30), so svgrft keeps the TTL here:
``svgrft deployments list`` flags the expired ones and ``svgrft undeploy --expired`` deletes them.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from svgrft.errors import ConfigError
from svgrft.workflow.deploy_plan import DeployPlan, parse_time, rfc3339


def registry_path() -> Path:
    from svgrft.core.store import home_dir

    return home_dir() / "deployments.json"


def load_records() -> dict[str, dict]:
    """Deployments svgrft created, by full deployment name (a broken file reads as empty)."""
    p = registry_path()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def save_records(records: dict[str, dict]) -> None:
    p = registry_path()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(records, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, p)
    except OSError as e:
        raise ConfigError(f"cannot write {p}: {e.strerror or e}", hint="check SVGRFT_HOME is writable") from None


def record(plan: DeployPlan, *, temporary: bool = False, deployed_model: str | None = None) -> dict:
    rec = {
        "deployment": plan.deployment_name,
        "deployment_id": plan.deployment_id,
        "model": plan.target.model,
        "mode": plan.mode,
        "job_id": plan.target.job_id,
        "created": rfc3339(datetime.now(timezone.utc)),
        "expires": plan.expire_time,
        "ttl_seconds": plan.ttl_seconds,
        "temporary": temporary,
        "deployed_model": deployed_model,
        "model_string": plan.model_string,
    }
    records = load_records()
    records[plan.deployment_name] = rec
    save_records(records)
    return rec


def forget(deployment_name: str) -> None:
    records = load_records()
    if records.pop(deployment_name, None) is not None:
        save_records(records)


def is_expired(rec: dict | None, now: datetime | None = None) -> bool:
    exp = parse_time((rec or {}).get("expires"))
    return exp is not None and (now or datetime.now(timezone.utc)) >= exp
