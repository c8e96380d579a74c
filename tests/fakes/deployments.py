"""Deployments and LoRA loads of :class:`~tests.fakes.fireworks.FakeFireworks` (mixed into it).

Wire contract (reference/fireworks.md §2.7, §5.2b; the installed SDK's ``resources/deployments.py``,
``resources/lora.py``, ``types/deployment.py``, ``types/shared/deployed_model.py``):

* ``POST …/deployments?deploymentId=`` — query keys limited to the SDK's (``deploymentId``,
  ``disableAutoDeploy``, ``disableSpeculativeDecoding``, ``skipImageTagValidation``, ``skipShapeValidation``,
  ``acceptShapelessRisk``, ``validateOnly``); body keys limited to ``DeploymentCreateParams`` (an unknown
  field is 400 code 3, as grpc-gateway's protojson does). Checked: ``baseModel`` (an existing READY model of
  the account, or ``accounts/fireworks/models/*``), ``acceleratorType`` enum, ``acceleratorCount`` ≥ 1,
  ``minReplicaCount`` ≤ ``maxReplicaCount`` (ints ≥ 0), ``displayName`` < 64 chars, ``expireTime`` RFC 3339,
  ``autoscalingPolicy`` windows as Duration strings (``"900s"``; ``scaleToZeroWindow`` ≥ 5 min,
  the others ≤ 1 h), ``enableAddons`` only on a base model (not on a LoRA addon). ``validateOnly=true``
  answers the would-be deployment and stores nothing.
* States: ``CREATING`` for ``deployment_polls_creating`` GETs → ``READY`` (``replicaCount`` 1), or
  ``FAILED`` with ``status.message`` when ``deployment_fails_with`` is set. ``expireTime`` is stored and
  shown but **never deletes anything** (SDK 1.2.30: "no longer causes auto-deletion").
* ``DELETE …/deployments/{id}`` → ``DELETING`` for ``deployment_polls_deleting`` GETs → ``DELETED``
  (``deleteTime`` set). Deleted deployments are left out of lists unless ``showDeleted=true``; a GET still
  answers them; a second DELETE is 404. With a DEPLOYED LoRA still loaded, DELETE is 400 code 9 unless
  ``ignoreChecks=true`` [INFER].
* ``POST …/deployedModels`` (``lora.load``): body keys limited to ``LoraLoadParams``; ``model`` an addon
  (``HF_PEFT_ADDON``) of the account, ``deployment`` READY with ``enableAddons`` and the addon's base model
  (else 400 code 9); a second load of the same pair is 409. ``DEPLOYING`` for ``lora_polls_deploying``
  GETs → ``DEPLOYED``. ``DELETE`` (``lora.unload``) removes it.
* Inference (:meth:`servable`): ``<model>`` or ``<model>#accounts/<a>/deployments/<d>`` of an account model is
  served only by a READY deployment whose ``baseModel`` is the model (live merge) or that has it DEPLOYED
  as a LoRA; anything else is the inference 404.

Test helpers: :meth:`live_deployments` (everything not DELETED — what bills), :meth:`add_deployment`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Optional

from .trainer import epoch_of_model

DEPLOY_QUERY = {
    "deploymentId",
    "disableAutoDeploy",
    "disableSpeculativeDecoding",
    "skipImageTagValidation",
    "skipShapeValidation",
    "acceptShapelessRisk",
    "validateOnly",
}
DEPLOY_BODY = {
    "baseModel",
    "acceleratorCount",
    "acceleratorType",
    "activeModelVersion",
    "autoscalingPolicy",
    "autoTune",
    "deploymentShape",
    "deploymentTemplate",
    "description",
    "directRouteApiKeys",
    "directRouteType",
    "disableDeploymentSizeValidation",
    "displayName",
    "draftModel",
    "draftTokenCount",
    "enableAddons",
    "enableHotLoad",
    "enableHotReloadLatestAddon",
    "enableMtp",
    "enableSessionAffinity",
    "expireTime",
    "hotLoadBucketType",
    "hotLoadBucketUrl",
    "maxContextLength",
    "maxReplicaCount",
    "maxWithRevocableReplicaCount",
    "minReplicaCount",
    "ngramSpeculationLength",
    "placement",
    "precision",
    "pricingPlanId",
    "targetModelVersion",
}
ACCELERATORS = {
    "ACCELERATOR_TYPE_UNSPECIFIED",
    "NVIDIA_A100_80GB",
    "NVIDIA_H100_80GB",
    "AMD_MI300X_192GB",
    "NVIDIA_A10G_24GB",
    "NVIDIA_A100_40GB",
    "NVIDIA_L4_24GB",
    "NVIDIA_H200_141GB",
    "NVIDIA_B200_180GB",
    "AMD_MI325X_256GB",
    "AMD_MI350X_288GB",
}
AUTOSCALING = {"loadTargets", "scaleDownWindow", "scaleToZeroWindow", "scaleUpWindow"}
LORA_BODY = {"default", "deployment", "description", "displayName", "model", "public", "serverless"}
DURATION_RE = re.compile(r"^(\d+)(\.\d{1,9})?s$")
RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


def _bool_q(req: Any, name: str) -> bool:
    v = req.q(name)
    if v in (None, ""):
        return False
    if v.lower() not in ("true", "false", "1", "0"):
        from .fireworks import _bad

        raise _bad(f"invalid value for query parameter {name}: {v!r}")
    return v.lower() in ("true", "1")


class DeploymentRoutes:
    """Mixin: needs FakeFireworks' ``_store``, ``_new``, ``_get``, ``_list``, ``_body``, ``_public``, ``_now``."""

    deployment_polls_deleting: int = 0
    deployment_fails_with: Optional[str] = None
    lora_polls_deploying: int = 1

    # ------------------------------------------------------------------ helpers for tests
    def add_deployment(
        self, deployment_id: str, base_model: str, *, state: str = "READY", account: Optional[str] = None, **fields: Any
    ) -> dict:
        with self.lock:
            r = self._new("deployments", self._acct(account), deployment_id, {"baseModel": base_model, **fields})
            r["state"] = state
            r["_polls_left"] = 0
            r["_del_polls"] = 0
            if state == "READY":
                r["replicaCount"] = 1
            return self._public(r)

    def live_deployments(self, account: Optional[str] = None) -> list:
        """Deployments that exist (any state but DELETED), as the API shows them."""
        with self.lock:
            acct = self._acct(account)
            return [
                self._public(r)
                for (a, _), r in sorted(self._store["deployments"].items())
                if a == acct and r.get("state") != "DELETED"
            ]

    def deployed_models(self, account: Optional[str] = None) -> list:
        with self.lock:
            acct = self._acct(account)
            return [self._public(r) for (a, _), r in sorted(self._store["deployedModels"].items()) if a == acct]

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _duration(v: Any, field: str) -> float:
        from .fireworks import _bad

        m = DURATION_RE.match(v) if isinstance(v, str) else None
        if not m:
            raise _bad(f'invalid value for {field}: {v!r} (a duration such as "300s")')
        return float(m.group(1) + (m.group(2) or ""))

    def _check_deploy_body(self, body: dict, account: str) -> dict:
        from .fireworks import _bad, _not_found

        unknown = sorted(set(body) - DEPLOY_BODY - {"name", "state", "status", "createTime", "updateTime"})
        if unknown:
            raise _bad(f"unknown field {unknown[0]!r} in Deployment")
        base = body.get("baseModel")
        if not isinstance(base, str) or not base:
            raise _bad("baseModel is required")
        mm = re.fullmatch(r"accounts/([^/]+)/models/([^/#]+)", base)
        if not mm:
            raise _bad(f"invalid baseModel {base!r}")
        model = None
        if mm.group(1) == account:
            model = self._get("models", account, mm.group(2))
            if model.get("state") != "READY":
                raise _bad(f'model "{base}" is not READY')
        elif mm.group(1) != "fireworks":
            raise _not_found(f'model "{base}" not found')
        if "acceleratorType" in body and body["acceleratorType"] not in ACCELERATORS:
            raise _bad(f"invalid value for acceleratorType: {body['acceleratorType']!r}")
        for k in ("acceleratorCount", "minReplicaCount", "maxReplicaCount", "maxContextLength"):
            if k in body and (isinstance(body[k], bool) or not isinstance(body[k], int) or body[k] < 0):
                raise _bad(f"invalid value for {k}: {body[k]!r}")
        if body.get("acceleratorCount") == 0:
            raise _bad("acceleratorCount must be at least 1")
        if (
            "minReplicaCount" in body
            and "maxReplicaCount" in body
            and body["minReplicaCount"] > body["maxReplicaCount"]
        ):
            raise _bad("minReplicaCount must not exceed maxReplicaCount")
        dn = body.get("displayName")
        if dn is not None and (not isinstance(dn, str) or len(dn) >= 64):
            raise _bad("displayName must be fewer than 64 characters long")
        if "expireTime" in body and (
            not isinstance(body["expireTime"], str) or not RFC3339_RE.match(body["expireTime"])
        ):
            raise _bad(f"invalid value for expireTime: {body['expireTime']!r} (RFC 3339)")
        ap = body.get("autoscalingPolicy")
        if ap is not None:
            if not isinstance(ap, dict) or set(ap) - AUTOSCALING:
                raise _bad(f"invalid autoscalingPolicy {ap!r}")
            if "scaleToZeroWindow" in ap and self._duration(ap["scaleToZeroWindow"], "scaleToZeroWindow") < 300:
                raise _bad("autoscalingPolicy.scaleToZeroWindow must be at least 5 minutes")
            for k in ("scaleUpWindow", "scaleDownWindow"):
                if k in ap and self._duration(ap[k], k) > 3600:
                    raise _bad(f"autoscalingPolicy.{k} must be at most 1 hour")
        for k in ("enableAddons", "enableHotLoad", "enableMtp", "enableSessionAffinity"):
            if k in body and not isinstance(body[k], bool):
                raise _bad(f"invalid value for {k}: {body[k]!r}")
        if body.get("enableAddons") and model is not None and model.get("kind") == "HF_PEFT_ADDON":
            raise _bad(f'enableAddons needs a base model; "{base}" is a PEFT addon (deploy its base model)')
        return {k: v for k, v in body.items() if k not in ("name", "state", "status", "createTime", "updateTime")}

    # ------------------------------------------------------------------ deployments
    def _poll_deployment(self, r: dict) -> None:
        st = r.get("state")
        if st == "CREATING":
            if r["_polls_left"] > 0:
                r["_polls_left"] -= 1
            if r["_polls_left"] == 0:
                if self.deployment_fails_with:
                    r["state"] = "FAILED"
                    r["status"] = {"code": "RESOURCE_EXHAUSTED", "message": self.deployment_fails_with}
                else:
                    r["state"] = "READY"
                    r["replicaCount"] = 1
                    r["status"] = {"code": "OK", "message": ""}
                r["updateTime"] = self._now()
        elif st == "DELETING":
            if r["_del_polls"] > 0:
                r["_del_polls"] -= 1
            if r["_del_polls"] == 0:
                self._mark_deleted(r)

    def _mark_deleted(self, r: dict) -> None:
        r["state"] = "DELETED"
        r["replicaCount"] = 0
        r["deleteTime"] = self._now()
        r["updateTime"] = r["deleteTime"]

    def _r_deployments(self, req: Any, account: str, rid: Optional[str], verb: Optional[str]) -> Any:
        from .fireworks import _bad, _not_found, _precondition, json_response

        m = req.method
        if rid is None:
            if m == "GET":
                items = self._items("deployments", account)
                if not _bool_q(req, "showDeleted"):
                    items = [r for r in items if r.get("state") != "DELETED"]
                return self._list(req, items, "deployments")
            if m == "POST":
                unknown = sorted(set(req.query_multi) - DEPLOY_QUERY)
                if unknown:
                    raise _bad(f"unknown query parameter {unknown[0]!r}")
                body = self._body(req)
                fields = self._check_deploy_body(body, account)
                did = req.q("deploymentId") or ("dep-" + uuid.uuid4().hex[:10])
                if _bool_q(req, "validateOnly"):
                    return json_response(
                        200, {**fields, "name": f"accounts/{account}/deployments/{did}", "state": "STATE_UNSPECIFIED"}
                    )
                existing = self._store["deployments"].get((account, did))
                if existing is not None and existing.get("state") == "DELETED":
                    del self._store["deployments"][(account, did)]  # a deleted id may be reused [INFER]
                r = self._new("deployments", account, did, fields)
                r["state"] = "CREATING"
                r["_polls_left"] = self.deployment_polls_creating
                r["_del_polls"] = 0
                if self.deployment_polls_creating == 0:
                    self._poll_deployment(r)
                return json_response(200, self._public(r))
            raise _not_found(f"no route for {m} {req.path}")
        r = self._get("deployments", account, rid)
        if verb is None and m == "GET":
            self._poll_deployment(r)
            return json_response(200, self._public(r))
        if verb is None and m == "DELETE":
            if r.get("state") == "DELETED":
                raise _not_found(f'deployment "accounts/{account}/deployments/{rid}" not found')
            loaded = [
                k
                for k, d in self._store["deployedModels"].items()
                if d.get("deployment") == r["name"] and d.get("state") == "DEPLOYED"
            ]
            if loaded and not _bool_q(req, "ignoreChecks"):
                raise _precondition(
                    f'deployment "{rid}" still serves {len(loaded)} deployed model(s): unload them '
                    f"first or pass ignore_checks"
                )
            _bool_q(req, "hard")
            for k in loaded:
                del self._store["deployedModels"][k]
            if r.get("state") == "DELETING":
                return json_response(200, {})
            r["state"] = "DELETING"
            r["_del_polls"] = self.deployment_polls_deleting
            r["updateTime"] = self._now()
            if self.deployment_polls_deleting == 0:
                self._mark_deleted(r)
            return json_response(200, {})
        raise _not_found(f"no route for {m} {req.path}")

    # ------------------------------------------------------------------ LoRA (deployedModels)
    def _r_deployedModels(self, req: Any, account: str, rid: Optional[str], verb: Optional[str]) -> Any:
        from .fireworks import ApiError, _bad, _not_found, _precondition, json_response

        m = req.method
        if rid is None:
            if m == "GET":
                return self._list(req, self._items("deployedModels", account), "deployedModels")
            if m == "POST":
                unknown = sorted(set(req.query_multi) - {"replaceMergedAddon"})
                if unknown:
                    raise _bad(f"unknown query parameter {unknown[0]!r}")
                body = self._body(req)
                extra = sorted(set(body) - LORA_BODY)
                if extra:
                    raise _bad(f"unknown field {extra[0]!r} in DeployedModel")
                ma, mid = self._ref(body.get("model"), account, "models", "model")
                da, did = self._ref(body.get("deployment"), account, "deployments", "deployment")
                model = self._get("models", ma, mid)
                dep = self._get("deployments", da, did)
                if dep.get("state") == "DELETED":
                    raise _not_found(f'deployment "accounts/{da}/deployments/{did}" not found')
                if model.get("kind") != "HF_PEFT_ADDON":
                    raise _bad(f'model "accounts/{ma}/models/{mid}" is not a PEFT addon')
                if dep.get("state") != "READY":
                    raise _precondition(f'deployment "{did}" is {dep.get("state")}, not READY')
                if not dep.get("enableAddons"):
                    raise _precondition(f'deployment "{did}" was created without enableAddons')
                pbase = (model.get("peftDetails") or {}).get("baseModel")
                if pbase and pbase != dep.get("baseModel"):
                    raise _precondition(
                        f"addon base model {pbase} does not match the deployment's {dep.get('baseModel')}"
                    )
                mname, dname = f"accounts/{ma}/models/{mid}", f"accounts/{da}/deployments/{did}"
                if any(
                    x.get("model") == mname and x.get("deployment") == dname
                    for (a, _), x in self._store["deployedModels"].items()
                    if a == account
                ):
                    raise ApiError(409, f'model "{mname}" is already deployed to "{dname}"', 6)
                first = not any(x.get("model") == mname for (a, _), x in self._store["deployedModels"].items())
                r = self._new(
                    "deployedModels",
                    account,
                    "dm-" + uuid.uuid4().hex[:10],
                    {
                        "model": mname,
                        "deployment": dname,
                        "displayName": body.get("displayName"),
                        "default": body.get("default", first),
                        "public": body.get("public"),
                    },
                )
                r["state"] = "DEPLOYING"
                r["_polls_left"] = self.lora_polls_deploying
                if self.lora_polls_deploying == 0:
                    r["state"] = "DEPLOYED"
                return json_response(200, self._public(r))
            raise _not_found(f"no route for {m} {req.path}")
        r = self._get("deployedModels", account, rid)
        if verb is None and m == "GET":
            if r["state"] == "DEPLOYING":
                r["_polls_left"] = max(0, r["_polls_left"] - 1)
                if r["_polls_left"] == 0:
                    r["state"] = "DEPLOYED"
                    r["updateTime"] = self._now()
            return json_response(200, self._public(r))
        if verb is None and m == "DELETE":
            del self._store["deployedModels"][(account, rid)]
            return json_response(200, {})
        raise _not_found(f"no route for {m} {req.path}")

    # ------------------------------------------------------------------ inference
    def servable(self, model: str, account: str) -> bool:
        """Would Fireworks inference serve this model string for a key of ``account``?"""
        model = model.strip()
        if model.startswith("fireworks_ai/"):
            model = model[len("fireworks_ai/") :]
        base, _, dep = model.partition("#")
        mm = re.fullmatch(r"accounts/([^/]+)/models/([^/]+)", base)
        if not mm:
            return False
        if mm.group(1) == "fireworks":
            return self.serverless_models is None or mm.group(2) in self.serverless_models
        if mm.group(1) != account:
            return False
        if self.serve_all_models:
            return True
        if epoch_of_model(base) is not None:  # a running job's policy of the moment (trainer.epoch_model)
            return any(base.startswith(f"accounts/{account}/models/{jid}-epoch-") for jid in self._epochs_of)
        mr = self._store["models"].get((account, mm.group(2)))
        if mr is None or mr.get("state") != "READY":
            return False
        ready = {
            d["name"]: d
            for (a, _), d in self._store["deployments"].items()
            if a == account and d.get("state") == "READY"
        }
        loads = [
            d
            for (a, _), d in self._store["deployedModels"].items()
            if a == account and d.get("model") == base and d.get("state") == "DEPLOYED" and d.get("deployment") in ready
        ]
        if dep:
            d = ready.get(dep)
            if d is None:
                return False
            return d.get("baseModel") == base or any(x.get("deployment") == dep for x in loads)
        return any(d.get("baseModel") == base for d in ready.values()) or any(x.get("default") for x in loads)


__all__ = ["DeploymentRoutes"]
