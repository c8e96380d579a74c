"""FakeFireworks: control plane + inference + tracing gateway on ONE loopback HTTP server.

Follows reference/fireworks.md §9 (contract checklist).  Summary of behaviour (tests may rely on it):

* **Auth** on every ``/v1/**``, ``/inference/**``, ``/verifyApiKey`` and tracing route:
  ``Authorization: Bearer <key>`` with a key of ``api_keys`` (key -> account) else 401
  ``{"code":16}``; a key of another account on ``/v1/accounts/<a>/...`` -> 403 ``{"code":7}``
  (exception: public ``accounts/fireworks/models``).  ``GET /verifyApiKey`` answers with header
  ``x-fireworks-account-id``; ``GET /v1/accounts`` lists the key's account.
* **Errors**: google.rpc ``{"code": <int>, "message", "details": []}``; 400 code 3 bad argument /
  id (``^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$``), 400 code 9 failed precondition, 404 code 5 unknown
  resource *and* unknown route, 409 code 6 duplicate.  ``no_retry_hints=True`` (default) adds
  ``x-should-retry: false`` to 400/404/409 so SDK tests do not spend seconds retrying.
* **Wire conventions**: full resource names out, bare ids or full names accepted in references,
  camelCase, int64 as strings (``exampleCount``), RFC 3339 ``Z`` times, unset fields omitted,
  resource ``status.code`` as an enum name.  Lists: ``pageSize`` (default 50, max 200),
  opaque ``pageToken``, ``nextPageToken`` (omitted on the last page), ``totalSize``;
  ``filter`` supports ``field="value"`` clauses joined by ``AND``; ``orderBy`` one field
  (``name``/``create_time``/``update_time``/``display_name``/``state``) + optional ``desc``.
* **Secrets**: value never returned; kept for tests in :meth:`secret_value`.
* **Datasets**: create -> UPLOADING; ``:upload`` (multipart field ``file``) or
  ``:getUploadEndpoint`` + PUT + ``:validateUpload`` -> READY (after ``dataset_polls_uploading``
  GETs) with ``exampleCount`` = non-empty lines.  Empty upload -> 400; with
  ``dataset_validate_jsonl`` a line that is not a JSON object -> 400 code 3; ``dataset_upload_fails``
  (bool or ``callable(bytes) -> message|None``) -> 400 code 3 with that message.  Upload to a READY
  dataset -> 400 code 9 [INFER].
* **Evaluators**: ``POST evaluatorsV2`` -> BUILDING (and stays so until code is uploaded);
  ``:getUploadEndpoint`` -> http signed URLs on this server (PUT needs no auth, needs ``sig``);
  ``:validateUpload`` -> BUILDING for ``evaluator_polls_building`` GETs, then ACTIVE or
  BUILD_FAILED with ``status.message`` (missing tarball, not a tar.gz, no ``requirements.txt``,
  no entry-point file, or ``evaluator_build_fails``).  The tarball may hold the files at its root
  or under one top directory (eval-protocol's layout).  ``:getBuildLogEndpoint`` -> a URL whose
  GET (no auth) returns the build log text.
* **RFT jobs**: see :meth:`FakeFireworks._job_phases`.  Each GET of a job advances it one step and
  the fake clock by ``clock_step`` seconds.  On completion the output model is created
  (``HF_PEFT_ADDON``, READY).  With ``job_runs_evaluator=True`` the fake trains as the launcher does:
  at the start of each epoch it runs the job's uploaded evaluator (unpacked, under eval-protocol's
  pytest plugin, in a subprocess; see :mod:`tests.fakes.trainer`) on the job's dataset with the
  epoch's policy ``accounts/<a>/models/<job>-epoch-<e>`` (which draws better each epoch), and the job
  does not leave the epoch until that run has finished (a failed run fails the job); the runs are in
  ``fake.epoch_runs[job]``.  In local rollout mode that leaves no traces at all, as on the real
  service.  With ``job_traces=True`` (default False) every finished epoch leaves synthetic traces in the
  tracing store for each dataset row x ``inferenceParameters.responseCandidatesCount`` (max 4):
  tags ``invocation_id:<job-id>``, ``experiment_id:<job-id>-epoch-<e>``,
  ``rollout_id:<job-id>-e<e>-r<row#>-s<sample>``, ``run_id:run-<sample>``, ``row_id:<row id>``
  and (``job_epoch_tag=True``) ``epoch:<e>``, timestamps inside the epoch window.  Epoch 0 is drawn
  with ``params["quality"] = "base"`` (the default policy draws a single grey circle), later
  epochs with ``"tuned"`` (corpus SVGs).
* **Deployments and LoRA loads** (``deployments``, ``deployedModels``): see :mod:`tests.fakes.deployments`.
* **Inference**: ``POST /v1/chat/completions`` and ``/inference/v1/chat/completions``; serverless
  ``accounts/fireworks/models/*`` always; ``accounts/<a>/models/<x>`` (optionally
  ``#accounts/<a>/deployments/<d>``) only if a READY deployment / deployed model serves it or
  ``serve_all_models=True``; else 404 ``{"message": "Model not found, inaccessible, and/or not
  deployed", "param": "model", "code": "NOT_FOUND", "type": "error"}``.
* **Tracing gateway**: see :mod:`tests.fakes.tracing`.  Use ``localhost_url`` as the gateway base
  for eval-protocol (it only rewrites ``http://localhost...`` bases into the tagged-path form).
"""

from __future__ import annotations

import base64
import copy
import email.parser
import email.policy
import gzip
import io
import json
import re
import tarfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Optional, Union
from urllib.parse import quote

from ._http import FakeServer, Request, Response, json_response
from .chat import build_completion, sse_chunks, validate_chat_body
from .deployments import DeploymentRoutes
from .policy import DEFAULT_CORPUS, Policy, make_policy
from .tracing import TracingStore, decode_base_url, detail, rfc3339
from .trainer import EpochPolicy, epoch_model, epoch_of_model, run_evaluator_epoch

ID_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
GRPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 501: 12, 502: 14, 503: 14, 504: 4}
GRPC_NAME = {3: "INVALID_ARGUMENT", 5: "NOT_FOUND", 9: "FAILED_PRECONDITION", 13: "INTERNAL", 0: "OK"}
TERMINAL = {
    "JOB_STATE_COMPLETED",
    "JOB_STATE_FAILED",
    "JOB_STATE_CANCELLED",
    "JOB_STATE_EARLY_STOPPED",
    "JOB_STATE_EXPIRED",
}
COLLECTIONS = (
    "secrets",
    "datasets",
    "evaluators",
    "reinforcementFineTuningJobs",
    "models",
    "deployments",
    "deployedModels",
)
DEFAULT_SERVERLESS = (
    "qwen3-0p6b",
    "qwen3-8b",
    "llama-v3p1-8b-instruct",
    "gpt-oss-120b",
    "gpt-oss-20b",
    "kimi-k2-instruct",
)
MODEL_NOT_FOUND = {
    "message": "Model not found, inaccessible, and/or not deployed",
    "param": "model",
    "code": "NOT_FOUND",
    "type": "error",
}


class FakeClock:
    """Monotonic fake UTC clock: ``now()`` moves 1 ms per call, ``advance()`` by ``step`` seconds."""

    def __init__(self, start: Optional[datetime] = None, step: float = 60.0):
        self._t = (start or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
        self.step = step
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            self._t += timedelta(milliseconds=1)
            return self._t

    def peek(self) -> datetime:
        with self._lock:
            return self._t

    def advance(self, seconds: Optional[float] = None) -> datetime:
        with self._lock:
            self._t += timedelta(seconds=self.step if seconds is None else seconds)
            return self._t


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: Optional[int] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code if code is not None else GRPC.get(status, 2)


def _bad(msg: str) -> ApiError:
    return ApiError(400, msg, 3)


def _precondition(msg: str) -> ApiError:
    return ApiError(400, msg, 9)


def _not_found(msg: str) -> ApiError:
    return ApiError(404, msg, 5)


class FakeFireworks(DeploymentRoutes, FakeServer):
    name = "fireworks"

    def __init__(
        self,
        api_keys: Optional[dict] = None,
        *,
        no_retry_hints: bool = True,
        job_polls_per_state: int = 1,
        job_polls_per_epoch: int = 2,
        job_fails_with: Optional[str] = None,
        job_fail_epoch: int = 0,
        job_traces: bool = False,
        job_trace_rows: Optional[int] = 20,
        job_epoch_tag: bool = True,
        job_runs_evaluator: bool = False,
        evaluator_run_timeout: float = 600.0,
        evaluator_polls_building: int = 1,
        evaluator_build_fails: Union[bool, Callable[[bytes], Optional[str]], None] = None,
        dataset_polls_uploading: int = 0,
        dataset_upload_fails: Union[bool, Callable[[bytes], Optional[str]], None] = None,
        dataset_validate_jsonl: bool = True,
        deployment_polls_creating: int = 1,
        serve_all_models: bool = False,
        serverless_models: Optional[tuple] = None,
        policy: Union[str, Policy, None] = "corpus",
        corpus_dir: Any = DEFAULT_CORPUS,
        latency: float = 0.0,
        request_latency: float = 0.0,
        clock_start: Optional[datetime] = None,
        clock_step: float = 60.0,
        tracing_prefixes: tuple = ("", "/tracing"),
    ):
        super().__init__()
        self.api_keys = dict(api_keys or {"fw-test-key": "acct"})
        self.no_retry_hints = no_retry_hints
        self.job_polls_per_state = max(0, int(job_polls_per_state))
        self.job_polls_per_epoch = max(1, int(job_polls_per_epoch))
        self.job_fails_with = job_fails_with
        self.job_fail_epoch = job_fail_epoch
        self.job_traces = job_traces
        self.job_trace_rows = job_trace_rows
        self.job_epoch_tag = job_epoch_tag
        self.evaluator_polls_building = max(0, int(evaluator_polls_building))
        self.evaluator_build_fails = evaluator_build_fails
        self.dataset_polls_uploading = max(0, int(dataset_polls_uploading))
        self.dataset_upload_fails = dataset_upload_fails
        self.dataset_validate_jsonl = dataset_validate_jsonl
        self.deployment_polls_creating = max(0, int(deployment_polls_creating))
        self.serve_all_models = serve_all_models
        self.serverless_models = serverless_models
        self.base_policy = make_policy(policy, corpus_dir)
        self._epochs_of: dict[str, int] = {}
        self.epoch_policy = EpochPolicy(self._epochs_of)
        self.job_runs_evaluator = job_runs_evaluator
        self.evaluator_run_timeout = float(evaluator_run_timeout)
        self.epoch_runs: dict[str, list] = {}  # job id -> [trainer.EpochRun] (job_runs_evaluator)
        self.latency = latency
        self.request_latency = float(request_latency)  # seconds slept per control-plane / gateway request
        self.clock = FakeClock(clock_start, clock_step)
        self.tracing = TracingStore(self.clock)
        self.tracing_prefixes = tuple(tracing_prefixes)
        self.inference_calls = 0
        self.inference_models: list[str] = []
        self._store: dict[str, dict] = {c: {} for c in COLLECTIONS}
        self._blobs: dict[tuple, bytes] = {}  # (kind, account, id, filename) -> bytes
        self._build_logs: dict[tuple, str] = {}

    def policy(self, model: str, messages: list, params: dict) -> Optional[str]:
        """The per-epoch policies of running jobs (trainer.EpochPolicy), else the configured policy."""
        if epoch_of_model(str(model)) is not None:
            return self.epoch_policy(str(model), messages, params)
        return self.base_policy(model, messages, params)

    # ================================================================== public helpers
    @property
    def accounts(self) -> list:
        return sorted(set(self.api_keys.values()))

    @property
    def default_account(self) -> str:
        return next(iter(self.api_keys.values()))

    def _acct(self, account: Optional[str]) -> str:
        return account or self.default_account

    def secret_value(self, secret_id: str, account: Optional[str] = None) -> Optional[str]:
        with self.lock:
            r = self._store["secrets"].get((self._acct(account), secret_id))
            return None if r is None else r["_value"]

    def dataset_file(self, dataset_id: str, account: Optional[str] = None) -> Optional[bytes]:
        with self.lock:
            r = self._store["datasets"].get((self._acct(account), dataset_id))
            return None if r is None else r.get("_file")

    def evaluator_tarball(self, evaluator_id: str, account: Optional[str] = None) -> Optional[bytes]:
        with self.lock:
            r = self._store["evaluators"].get((self._acct(account), evaluator_id))
            return None if r is None else r.get("_tarball")

    def build_log(self, evaluator_id: str, account: Optional[str] = None) -> Optional[str]:
        with self.lock:
            return self._build_logs.get((self._acct(account), evaluator_id))

    def job_payload(self, job_id: str, account: Optional[str] = None) -> Optional[dict]:
        with self.lock:
            r = self._store["reinforcementFineTuningJobs"].get((self._acct(account), job_id))
            return None if r is None else copy.deepcopy(r["_payload"])

    def resource(self, collection: str, rid: str, account: Optional[str] = None) -> Optional[dict]:
        """Public view of a stored resource (no side effects, does not advance state)."""
        with self.lock:
            r = self._store[collection].get((self._acct(account), rid))
            return None if r is None else self._public(r)

    def job(self, job_id: str, account: Optional[str] = None) -> Optional[dict]:
        return self.resource("reinforcementFineTuningJobs", job_id, account)

    def job_epochs(self, job_id: str, account: Optional[str] = None) -> list:
        """``[{"epoch": e, "start": datetime, "end": datetime|None}]`` on the fake clock."""
        with self.lock:
            r = self._store["reinforcementFineTuningJobs"][(self._acct(account), job_id)]
            return [dict(w) for w in r["_epochs"]]

    def job_create_time(self, job_id: str, account: Optional[str] = None) -> datetime:
        with self.lock:
            return self._store["reinforcementFineTuningJobs"][(self._acct(account), job_id)]["_created"]

    def advance_job(self, job_id: str, polls: int = 1, account: Optional[str] = None) -> dict:
        """Advance a job as if it had been polled ``polls`` times; returns the public job."""
        with self.lock:
            r = self._store["reinforcementFineTuningJobs"][(self._acct(account), job_id)]
            for _ in range(polls):
                self._poll_job(r)
            return self._public(r)

    def run_job(self, job_id: str, account: Optional[str] = None, max_polls: int = 10_000) -> dict:
        """Advance a job until it reaches a terminal state (waiting, lock released, for evaluator runs)."""
        for _ in range(max_polls):
            with self.lock:
                r = self._store["reinforcementFineTuningJobs"][(self._acct(account), job_id)]
                if r["state"] in TERMINAL:
                    break
                self._poll_job(r)
                waiting = self._run_pending(r)
            if waiting:
                time.sleep(0.05)
        with self.lock:
            return self._public(self._store["reinforcementFineTuningJobs"][(self._acct(account), job_id)])

    def fail_job(self, job_id: str, message: str = "injected failure", account: Optional[str] = None) -> None:
        with self.lock:
            r = self._store["reinforcementFineTuningJobs"][(self._acct(account), job_id)]
            self._fail(r, message)

    def set_job_state(
        self,
        job_id: str,
        state: str,
        epoch: Optional[int] = None,
        percent: Optional[int] = None,
        hold: bool = False,
        account: Optional[str] = None,
    ) -> None:
        """Force a job state.  RUNNING with ``epoch`` re-positions the schedule there; ``hold=True``
        freezes the job (polls no longer advance it) until the next ``set_job_state``."""
        state = state if state.startswith("JOB_STATE_") else "JOB_STATE_" + state.upper()
        with self.lock:
            r = self._store["reinforcementFineTuningJobs"][(self._acct(account), job_id)]
            r["_hold"] = hold
            if state == "JOB_STATE_COMPLETED":
                self._complete(r)
                return
            if state == "JOB_STATE_FAILED":
                self._fail(r, "failed (set by test)")
                return
            if state == "JOB_STATE_RUNNING" and epoch is not None:
                phases = r["_phases"]
                idx = next(
                    (
                        i
                        for i, p in enumerate(phases)
                        if p[0] == state and p[1] == epoch and (percent is None or p[2] >= percent)
                    ),
                    None,
                )
                if idx is None:
                    raise ValueError(f"job has no epoch {epoch}")
                r["_cursor"] = idx
                self._poll_job(r, force=True)
                if percent is not None:
                    r["jobProgress"]["percent"] = int(percent)
                return
            r["state"] = state
            if epoch is not None or percent is not None:
                jp = r.setdefault("jobProgress", {})
                if epoch is not None:
                    jp["epoch"] = int(epoch)
                if percent is not None:
                    jp["percent"] = int(percent)
            r["updateTime"] = rfc3339(self.clock.now())

    def add_trace(
        self,
        *,
        tags: list,
        messages: list,
        output: Any = None,
        timestamp: Any = None,
        account: Optional[str] = None,
        **kw,
    ) -> dict:
        """Seed a trace directly (same shape as recorded ones)."""
        with self.lock:
            return self.tracing.add_trace(
                tags=tags, messages=messages, output=output, timestamp=timestamp, account=self._acct(account), **kw
            )

    def add_log(
        self,
        *,
        tags: list,
        message: str = "",
        status: Optional[dict] = None,
        extras: Optional[dict] = None,
        account: Optional[str] = None,
        program: Optional[str] = None,
        timestamp: Any = None,
    ) -> dict:
        """Seed a log entry (``timestamp`` defaults to the fake clock's now)."""
        body = {"tags": tags, "message": message, "status": status, "extras": extras}
        if program:
            body["program"] = program
        with self.lock:
            return self.tracing.add_log(body, self._acct(account), timestamp)

    @property
    def traces(self) -> list:
        with self.lock:
            return [self.tracing.public(t) for t in self.tracing.traces]

    @property
    def logs(self) -> list:
        with self.lock:
            return [self.tracing.public(e) for e in self.tracing.logs]

    # ---- seeding (skip whole flows in other modules' tests)
    def add_dataset(
        self,
        dataset_id: str,
        content: bytes = b'{"messages":[{"role":"user","content":"draw a cow"}]}\n',
        *,
        state: str = "READY",
        account: Optional[str] = None,
        **fields,
    ) -> dict:
        with self.lock:
            acct = self._acct(account)
            r = self._new("datasets", acct, dataset_id, {"format": "FORMAT_UNSPECIFIED", **fields})
            r["state"] = "UPLOADING"
            if state == "READY":
                self._dataset_ready(r, content, "seed.jsonl")
            return self._public(r)

    def add_evaluator(
        self, evaluator_id: str, *, state: str = "ACTIVE", account: Optional[str] = None, **fields
    ) -> dict:
        with self.lock:
            r = self._new("evaluators", self._acct(account), evaluator_id, fields)
            r["state"] = state
            if state == "ACTIVE":
                r["status"] = {"code": "OK", "message": ""}
            return self._public(r)

    def add_model(self, model_id: str, *, account: Optional[str] = None, **fields) -> dict:
        with self.lock:
            base = {"kind": "HF_PEFT_ADDON", "state": "READY"}
            base.update(fields)
            r = self._new("models", self._acct(account), model_id, base)
            return self._public(r)

    # ================================================================== plumbing
    def is_secret_path(self, path: str) -> bool:
        return "/secrets" in path

    def error_response(self, status: int, message: str, kind: str = "") -> Response:
        headers = {}
        if self.no_retry_hints and status in (400, 404, 409) and kind != "fault":
            headers["x-should-retry"] = "false"
        return json_response(status, {"code": GRPC.get(status, 2), "message": message, "details": []}, headers)

    def _err(self, e: ApiError) -> Response:
        headers = {}
        if self.no_retry_hints and e.status in (400, 404, 409):
            headers["x-should-retry"] = "false"
        return json_response(e.status, {"code": e.code, "message": e.message, "details": []}, headers)

    def _now(self) -> str:
        return rfc3339(self.clock.now())

    @staticmethod
    def _public(r: dict) -> dict:
        return {k: copy.deepcopy(v) for k, v in r.items() if not k.startswith("_") and v is not None}

    def _new(self, collection: str, account: str, rid: str, fields: dict) -> dict:
        if not isinstance(rid, str) or not ID_RE.match(rid):
            raise _bad(f"invalid id {rid!r}: must match ^[a-z]([a-z0-9-]{{0,61}}[a-z0-9])?$")
        key = (account, rid)
        if key in self._store[collection]:
            kind = {
                "reinforcementFineTuningJobs": "reinforcement fine-tuning job",
                "deployedModels": "deployed model",
            }.get(collection, collection[:-1])
            raise ApiError(409, f'{kind} "{rid}" already exists', 6)
        now_dt = self.clock.now()
        r = {k: copy.deepcopy(v) for k, v in (fields or {}).items() if v is not None and k != "name"}
        r["name"] = f"accounts/{account}/{collection}/{rid}"
        r["createTime"] = rfc3339(now_dt)
        r["updateTime"] = r["createTime"]
        r["_created"] = now_dt
        r["_id"] = rid
        r["_account"] = account
        self._store[collection][key] = r
        return r

    def _get(self, collection: str, account: str, rid: str) -> dict:
        r = self._store[collection].get((account, rid))
        if r is None:
            kind = {"reinforcementFineTuningJobs": "reinforcement fine-tuning job"}.get(collection, collection[:-1])
            raise _not_found(f'{kind} "accounts/{account}/{collection}/{rid}" not found')
        return r

    @staticmethod
    def _ref(value: Any, account: str, collection: str, field: str) -> tuple:
        """(account, id) from a bare id or a full resource name."""
        if not isinstance(value, str) or not value:
            raise _bad(f"{field} must be a resource name")
        m = re.fullmatch(rf"accounts/([^/]+)/{collection}/([^/]+)", value)
        if m:
            return m.group(1), m.group(2)
        if "/" in value:
            raise _bad(f"{field}: invalid resource name {value!r}")
        return account, value

    def _body(self, req: Request) -> dict:
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            raise _bad("request body is not valid JSON")
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise _bad("request body must be a JSON object")
        return body

    # ================================================================== dispatch
    def handle(self, req: Request) -> Response:
        path = req.path
        if self.request_latency and "/chat/completions" not in path:
            time.sleep(self.request_latency)  # a realistic round trip (benchmarks), outside the lock
        if path.startswith("/upload/"):
            return self._signed_upload(req)
        if path.startswith("/buildlogs/") or path.startswith("/download/"):
            return self._signed_get(req)
        rest = self.tracing.strip_prefix(path, self.tracing_prefixes)
        if rest is not None:
            account = self.api_keys.get(req.bearer or "")
            if account is None:
                return detail(401, "Invalid or missing API key")
            proxy = self.tracing.match_proxy(rest)
            if proxy is not None:
                if req.method != "POST":
                    return detail(405, "Method Not Allowed")
                return self._proxy_completion(req, proxy, account)
            with self.lock:
                return self.tracing.handle(req, rest, account)
        is_api = path == "/verifyApiKey" or path.startswith("/v1/") or path == "/v1" or path.startswith("/inference/")
        if not is_api:
            return self._err(_not_found(f"no route for {req.method} {path}"))
        account = self.api_keys.get(req.bearer or "")
        if account is None:
            return self._err(ApiError(401, "unauthenticated: invalid or missing API key", 16))
        if path in ("/v1/chat/completions", "/inference/v1/chat/completions"):
            if req.method != "POST":
                return self._err(_not_found(f"no route for {req.method} {path}"))
            return self._chat(req, account, tags=None)
        try:
            with self.lock:
                return self._api(req, account)
        except ApiError as e:
            return self._err(e)

    def _api(self, req: Request, key_account: str) -> Response:
        path, method = req.path, req.method
        if path == "/verifyApiKey" and method == "GET":
            return json_response(200, {"valid": True}, {"x-fireworks-account-id": key_account})
        if path == "/v1/accounts" and method == "GET":
            items = [self._account_obj(key_account)]
            return self._list(req, items, "accounts")
        m = re.fullmatch(r"/v1/accounts/([^/]+)(?:/([A-Za-z0-9]+)(?:/(.+))?)?", path)
        if not m:
            raise _not_found(f"no route for {method} {path}")
        account, collection, rest = m.group(1), m.group(2), m.group(3)
        public_models = account == "fireworks" and collection == "models" and method == "GET"
        if account != key_account and not public_models:
            raise ApiError(403, f"permission denied: the API key cannot access account {account!r}", 7)
        if collection is None:
            if method == "GET":
                return json_response(200, self._account_obj(account))
            raise _not_found(f"no route for {method} {path}")
        if public_models:
            return self._public_models(req, rest)
        rid, verb = (rest.split(":", 1) + [None])[:2] if rest else (None, None)
        if rid is not None and "/" in rid:
            raise _not_found(f"no route for {method} {path}")
        handler = getattr(self, f"_r_{collection}", None)
        if handler is None:
            raise _not_found(f"no route for {method} {path}")
        return handler(req, account, rid, verb)

    def _account_obj(self, account: str) -> dict:
        return {
            "name": f"accounts/{account}",
            "displayName": account,
            "state": "READY",
            "email": f"{account}@example.com",
        }

    # ================================================================== lists
    _ORDER_FIELDS = {
        "name": "name",
        "create_time": "createTime",
        "createtime": "createTime",
        "update_time": "updateTime",
        "updatetime": "updateTime",
        "display_name": "displayName",
        "displayname": "displayName",
        "state": "state",
    }

    @staticmethod
    def _field(obj: dict, dotted: str) -> Any:
        cur: Any = obj
        for part in dotted.split("."):
            if not isinstance(cur, dict):
                return None
            if part in cur:
                cur = cur[part]
            else:
                camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), part)
                cur = cur.get(camel)
        return cur

    def _list(self, req: Request, items: list, key: str) -> Response:
        size_raw = req.q("pageSize") or req.q("page_size")
        try:
            size = int(size_raw) if size_raw not in (None, "") else 0
        except ValueError:
            raise _bad("pageSize must be an integer")
        if size < 0:
            raise _bad("pageSize must not be negative")
        size = 50 if size == 0 else min(size, 200)
        flt = (req.q("filter") or "").strip()
        if flt:
            clauses = re.split(r"\s+AND\s+", flt)
            conds = []
            for c in clauses:
                cm = re.fullmatch(r'\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(?:"([^"]*)"|([A-Za-z0-9_.:/-]+))\s*', c)
                if not cm:
                    raise _bad(f'unsupported filter {flt!r}: use field="value" [AND ...]')
                conds.append((cm.group(1), cm.group(2) if cm.group(2) is not None else cm.group(3)))
            items = [it for it in items if all(str(self._field(it, f)) == v for f, v in conds)]
        order = (req.q("orderBy") or req.q("order_by") or "").strip()
        if order:
            om = re.fullmatch(r"([A-Za-z_]+)(?:\s+(asc|desc))?", order)
            if not om or om.group(1).lower() not in self._ORDER_FIELDS:
                raise _bad(f"unsupported orderBy {order!r}")
            fld = self._ORDER_FIELDS[om.group(1).lower()]
            if fld == "createTime":
                keyf = lambda it: (it.get("_created") or datetime.min.replace(tzinfo=timezone.utc), it.get("name", ""))  # noqa: E731
            else:
                keyf = lambda it: (str(it.get(fld) or ""), it.get("name", ""))  # noqa: E731
            items = sorted(items, key=keyf, reverse=om.group(2) == "desc")
        else:
            items = sorted(items, key=lambda it: it.get("name", ""))
        fingerprint = f"{flt}|{order}"
        token = req.q("pageToken") or req.q("page_token") or ""
        offset = 0
        if token:
            try:
                data = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
                offset = int(data["o"])
                if data.get("f") != fingerprint or offset < 0:
                    raise ValueError
            except Exception:
                raise _bad("invalid page token")
        page = items[offset : offset + size]
        out: dict = {key: [self._public(it) for it in page], "totalSize": len(items)}
        if offset + size < len(items):
            tok = json.dumps({"o": offset + size, "f": fingerprint}).encode()
            out["nextPageToken"] = base64.urlsafe_b64encode(tok).decode().rstrip("=")
        return json_response(200, out)

    def _items(self, collection: str, account: str) -> list:
        return [r for (a, _), r in self._store[collection].items() if a == account]

    # ================================================================== secrets
    def _r_secrets(self, req: Request, account: str, rid: Optional[str], verb: Optional[str]) -> Response:
        m = req.method
        if rid is None:
            if m == "GET":
                return self._list(req, self._items("secrets", account), "secrets")
            if m == "POST":
                body = self._body(req)
                name = body.get("name")
                if not isinstance(name, str) or not name:
                    raise _bad("secret name is required")
                acct, sid = self._ref(name, account, "secrets", "name")
                if acct != account:
                    raise _bad(f"secret name {name!r} belongs to another account")
                key_name = body.get("keyName")
                if not isinstance(key_name, str) or not key_name:
                    raise _bad("keyName is required")
                value = body.get("value")
                if not isinstance(value, str) or value == "":
                    raise _bad("value is required")
                r = self._new("secrets", account, sid, {"keyName": key_name})
                r["_value"] = value
                return json_response(200, self._public(r))
            raise _not_found(f"no route for {m} {req.path}")
        if verb:
            raise _not_found(f"no route for {m} {req.path}")
        r = self._get("secrets", account, rid)
        if m == "GET":
            return json_response(200, self._public(r))
        if m == "PATCH":
            body = self._body(req)
            if "keyName" in body:
                if not isinstance(body["keyName"], str) or not body["keyName"]:
                    raise _bad("keyName must be a non-empty string")
                r["keyName"] = body["keyName"]
            if "value" in body:
                if not isinstance(body["value"], str) or body["value"] == "":
                    raise _bad("value must be a non-empty string")
                r["_value"] = body["value"]
            r["updateTime"] = self._now()
            return json_response(200, self._public(r))
        if m == "DELETE":
            del self._store["secrets"][(account, rid)]
            return json_response(200, {})
        raise _not_found(f"no route for {m} {req.path}")

    # ================================================================== datasets
    def _r_datasets(self, req: Request, account: str, rid: Optional[str], verb: Optional[str]) -> Response:
        m = req.method
        if rid is None:
            if m == "GET":
                return self._list(req, self._items("datasets", account), "datasets")
            if m == "POST":
                body = self._body(req)
                did = body.get("datasetId")
                if not isinstance(did, str) or not did:
                    raise _bad("datasetId is required")
                ds = body.get("dataset") or {}
                if not isinstance(ds, dict):
                    raise _bad("dataset must be an object")
                if "exampleCount" in ds and not re.fullmatch(r"\d+", str(ds["exampleCount"])):
                    raise _bad("dataset.exampleCount must be an int64 string")
                fields = {k: v for k, v in ds.items() if k not in ("state", "status", "createTime", "updateTime")}
                if "exampleCount" in fields:
                    fields["exampleCount"] = str(fields["exampleCount"])
                src = body.get("sourceDatasetId")
                r = self._new("datasets", account, did, fields)
                r["state"] = "UPLOADING"
                r["createdBy"] = f"{account}@example.com"
                if src:
                    sacct, sid = self._ref(src, account, "datasets", "sourceDatasetId")
                    srcr = self._get("datasets", sacct, sid)
                    if srcr.get("_file") is not None:
                        self._dataset_ready(r, srcr["_file"], srcr.get("_filename", "data.jsonl"))
                return json_response(200, self._public(r))
            raise _not_found(f"no route for {m} {req.path}")
        r = self._get("datasets", account, rid)
        if verb is None:
            if m == "GET":
                self._poll_dataset(r)
                return json_response(200, self._public(r))
            if m == "PATCH":
                body = self._body(req)
                for k, v in body.items():
                    if k in ("name", "state", "status", "createTime", "updateTime", "exampleCount"):
                        continue
                    r[k] = v
                r["updateTime"] = self._now()
                return json_response(200, self._public(r))
            if m == "DELETE":
                del self._store["datasets"][(account, rid)]
                return json_response(200, {})
        elif verb == "upload" and m == "POST":
            filename, content = self._multipart_file(req)
            self._check_dataset_upload(r, content)
            self._dataset_ready(r, content, filename)
            return json_response(
                200,
                {
                    "id": rid,
                    "object": "file",
                    "bytes": len(content),
                    "created_at": int(time.time()),
                    "filename": filename,
                    "purpose": "fine-tune",
                },
            )
        elif verb == "getUploadEndpoint" and m == "POST":
            return json_response(200, self._upload_endpoint(req, "datasets", account, rid))
        elif verb == "validateUpload" and m == "POST":
            self._body(req)
            files = [(k[3], v) for k, v in self._blobs.items() if k[:3] == ("datasets", account, rid)]
            if not files:
                raise _precondition("no file was uploaded to the signed URL")
            content = b"".join(v for _, v in sorted(files))
            self._check_dataset_upload(r, content)
            self._dataset_ready(r, content, files[0][0])
            return json_response(200, {})
        elif verb == "getDownloadEndpoint" and m == "GET":
            if r.get("_file") is None:
                raise _precondition("dataset has no uploaded file")
            fname = r.get("_filename", "data.jsonl")
            return json_response(
                200,
                {"filenameToSignedUrls": {fname: f"{self.url}/download/datasets/{account}/{rid}/{quote(fname)}?sig=x"}},
            )
        raise _not_found(f"no route for {m} {req.path}")

    def _check_dataset_upload(self, r: dict, content: bytes) -> None:
        if r["state"] == "READY":
            raise _precondition(f'dataset "{r["_id"]}" is already READY; create a new dataset to upload new data')
        if not content.strip():
            raise _bad("uploaded file is empty")
        if self.dataset_upload_fails:
            msg = (
                self.dataset_upload_fails(content)
                if callable(self.dataset_upload_fails)
                else "dataset validation failed (injected)"
            )
            if msg:
                raise _bad(msg)
        if self.dataset_validate_jsonl:
            for i, line in enumerate(content.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except (ValueError, UnicodeDecodeError):
                    raise _bad(f"line {i}: not valid JSON")
                if not isinstance(obj, dict):
                    raise _bad(f"line {i}: expected a JSON object")

    def _dataset_ready(self, r: dict, content: bytes, filename: str) -> None:
        r["_file"] = bytes(content)
        r["_filename"] = filename
        r["exampleCount"] = str(sum(1 for line in content.splitlines() if line.strip()))
        r["userUploaded"] = r.get("userUploaded") or {}
        r["_polls_left"] = self.dataset_polls_uploading
        if self.dataset_polls_uploading == 0:
            r["state"] = "READY"
        r["updateTime"] = self._now()

    def _poll_dataset(self, r: dict) -> None:
        if r["state"] == "UPLOADING" and r.get("_file") is not None:
            if r.get("_polls_left", 0) > 0:
                r["_polls_left"] -= 1
            else:
                r["state"] = "READY"
                r["updateTime"] = self._now()

    def _multipart_file(self, req: Request) -> tuple:
        ctype = req.headers.get("content-type", "")
        if "multipart/form-data" not in ctype.lower():
            raise _bad("expected multipart/form-data with a 'file' field")
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + req.body
        )
        if not msg.is_multipart():
            raise _bad("malformed multipart body")
        for part in msg.iter_parts():
            if part.get_param("name", header="content-disposition") == "file":
                payload = part.get_payload(decode=True) or b""
                return part.get_filename() or "data.jsonl", payload
        raise _bad("multipart body has no 'file' field")

    def _upload_endpoint(self, req: Request, kind: str, account: str, rid: str) -> dict:
        body = self._body(req)
        f2s = body.get("filenameToSize")
        if not isinstance(f2s, dict) or not f2s:
            raise _bad("filenameToSize must be a non-empty map")
        urls = {}
        for name, size in f2s.items():
            if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
                raise _bad(f"invalid file name {name!r}")
            if not re.fullmatch(r"\d+", str(size)):
                raise _bad(f"size of {name!r} must be an int64 string")
            urls[name] = f"{self.url}/upload/{kind}/{account}/{rid}/{quote(name)}?sig=x"
        return {"filenameToSignedUrls": urls}

    def _signed_upload(self, req: Request) -> Response:
        m = re.fullmatch(r"/upload/(datasets|evaluators)/([^/]+)/([^/]+)/([^/]+)", req.path)
        if req.method != "PUT" or not m:
            return Response(404, b"<Error><Code>NoSuchKey</Code></Error>", content_type="application/xml")
        if not req.q("sig"):
            return Response(
                403,
                b"<Error><Code>AccessDenied</Code><Message>missing signature</Message></Error>",
                content_type="application/xml",
            )
        kind, account, rid, fname = m.groups()
        rng = req.headers.get("x-goog-content-length-range")
        if rng:
            try:
                lo, hi = (int(x) for x in rng.split(","))
            except ValueError:
                return Response(400, b"<Error><Code>InvalidArgument</Code></Error>", content_type="application/xml")
            if not lo <= len(req.body) <= hi:
                return Response(400, b"<Error><Code>EntityTooLarge</Code></Error>", content_type="application/xml")
        with self.lock:
            r = self._store[kind].get((account, rid))
            if r is None:
                return Response(404, b"<Error><Code>NoSuchBucket</Code></Error>", content_type="application/xml")
            self._blobs[(kind, account, rid, fname)] = bytes(req.body)
            if kind == "evaluators":
                r["_tarball"] = bytes(req.body)
                r["_tarname"] = fname
        return Response(200, b"", content_type="text/plain")

    def _signed_get(self, req: Request) -> Response:
        if req.method != "GET":
            return Response(404, b"not found", content_type="text/plain")
        with self.lock:
            m = re.fullmatch(r"/buildlogs/([^/]+)/([^/]+)", req.path)
            if m:
                log = self._build_logs.get((m.group(1), m.group(2)))
                if log is None:
                    return Response(404, b"<Error><Code>NoSuchKey</Code></Error>", content_type="application/xml")
                return Response(200, log, content_type="text/plain; charset=utf-8")
            m = re.fullmatch(r"/download/datasets/([^/]+)/([^/]+)/([^/]+)", req.path)
            if m:
                r = self._store["datasets"].get((m.group(1), m.group(2)))
                if r is not None and r.get("_file") is not None:
                    return Response(200, r["_file"], content_type="application/octet-stream")
        return Response(404, b"<Error><Code>NoSuchKey</Code></Error>", content_type="application/xml")

    # ================================================================== evaluators
    def _r_evaluatorsV2(self, req: Request, account: str, rid: Optional[str], verb: Optional[str]) -> Response:
        if rid is not None or req.method != "POST":
            raise _not_found(f"no route for {req.method} {req.path}")
        body = self._body(req)
        eid = body.get("evaluatorId")
        if not isinstance(eid, str) or not eid:
            raise _bad("evaluatorId is required")
        ev = body.get("evaluator") or {}
        if not isinstance(ev, dict):
            raise _bad("evaluator must be an object")
        fields = {k: v for k, v in ev.items() if k not in ("state", "status", "createTime", "updateTime")}
        r = self._new("evaluators", account, eid, fields)
        r["state"] = "BUILDING"
        r["createdBy"] = f"{account}@example.com"
        return json_response(200, self._public(r))

    def _r_evaluators(self, req: Request, account: str, rid: Optional[str], verb: Optional[str]) -> Response:
        m = req.method
        if rid is None:
            if m == "GET":
                return self._list(req, self._items("evaluators", account), "evaluators")
            raise _not_found(f"no route for {m} {req.path}")
        r = self._get("evaluators", account, rid)
        if verb is None:
            if m == "GET":
                self._poll_evaluator(r)
                return json_response(200, self._public(r))
            if m == "PATCH":
                body = self._body(req)
                rebuild = False
                for k, v in body.items():
                    if k in ("name", "state", "status", "createTime", "updateTime"):
                        continue
                    if k in ("requirements", "entryPoint") and r.get(k) != v:
                        rebuild = True
                    r[k] = v
                r["updateTime"] = self._now()
                if (req.q("prepareCodeUpload") or "").lower() == "true":
                    r["state"] = "BUILDING"
                    r.pop("status", None)
                    r["_build"] = None
                elif rebuild and r.get("_tarball") is not None:
                    self._start_build(r)
                return json_response(200, self._public(r))
            if m == "DELETE":
                del self._store["evaluators"][(account, rid)]
                return json_response(200, {})
        elif verb == "getUploadEndpoint" and m == "POST":
            return json_response(200, self._upload_endpoint(req, "evaluators", account, rid))
        elif verb == "validateUpload" and m == "POST":
            self._body(req)
            self._start_build(r)
            return json_response(200, {})
        elif verb == "getBuildLogEndpoint" and m == "GET":
            return json_response(200, {"buildLogSignedUri": f"{self.url}/buildlogs/{account}/{rid}?sig=x"})
        elif verb == "getSourceCodeSignedUrl" and m == "GET":
            return json_response(200, {"filenameToSignedUrls": {}})
        raise _not_found(f"no route for {m} {req.path}")

    def _start_build(self, r: dict) -> None:
        ok, message, log = self._build(r)
        r["state"] = "BUILDING"
        r.pop("status", None)
        r["_build"] = {"polls_left": self.evaluator_polls_building, "ok": ok, "message": message}
        self._build_logs[(r["_account"], r["_id"])] = log
        self._poll_evaluator(r, count=False)

    def _poll_evaluator(self, r: dict, count: bool = True) -> None:
        """One GET of a building evaluator: ``polls_left`` GETs still show BUILDING, then the result."""
        b = r.get("_build")
        if not b or r["state"] != "BUILDING":
            return
        if b["polls_left"] > 0:
            if count:
                b["polls_left"] -= 1
            return
        if b["ok"]:
            r["state"] = "ACTIVE"
            r["status"] = {"code": "OK", "message": ""}
        else:
            r["state"] = "BUILD_FAILED"
            r["status"] = {"code": "INVALID_ARGUMENT", "message": b["message"]}
        r["updateTime"] = self._now()
        r["_build"] = None

    def _build(self, r: dict) -> tuple:
        """Inspect the uploaded tarball: (ok, message, build log text)."""
        log = [f"[build] evaluator {r['name']}"]
        tarball = r.get("_tarball")

        def fail(msg: str) -> tuple:
            log.append(f"ERROR: {msg}")
            log.append("[build] BUILD FAILED")
            return False, msg, "\n".join(log) + "\n"

        if tarball is None:
            return fail("no source code was uploaded (PUT the tarball to the signed URL before validateUpload)")
        log.append(f"[build] received {r.get('_tarname', 'source.tar.gz')} ({len(tarball)} bytes)")
        try:
            names = []
            with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:*") as tf:
                for i, member in enumerate(tf):
                    if i > 100_000:
                        break
                    if member.isfile():
                        names.append(member.name.lstrip("./"))
        except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile, ValueError) as e:
            return fail(f"source archive is not a valid tar.gz: {e}")
        log.append(f"[build] extracted {len(names)} files")

        def has(rel: str) -> bool:
            rel = rel.lstrip("./")
            return any(n == rel or (n.count("/") >= 1 and n.split("/", 1)[1] == rel) for n in names)

        if not has("requirements.txt"):
            return fail("requirements.txt not found in the source archive")
        log.append("[build] pip install -r requirements.txt ... ok")
        entry = r.get("entryPoint")
        if entry:
            target = entry.split("::", 1)[0]
            if not target.endswith(".py"):
                target = target.replace(".", "/") + ".py"
            if not has(target):
                return fail(f"entry point file {target!r} (from entryPoint {entry!r}) not found in the source archive")
            log.append(f"[build] entry point {entry} found")
        if self.evaluator_build_fails:
            msg = (
                self.evaluator_build_fails(tarball)
                if callable(self.evaluator_build_fails)
                else "build failed (injected)"
            )
            if msg:
                return fail(str(msg))
        log.append("[build] image built, evaluator ACTIVE")
        return True, "", "\n".join(log) + "\n"

    # ================================================================== RFT jobs
    def _job_phases(self, epochs: int) -> list:
        """Schedule of (state, epoch, percent) shown by successive GETs.

        PENDING x polls_per_state, VALIDATING x polls_per_state, then for each epoch
        ``job_polls_per_epoch`` RUNNING polls with percent rising to 100, then COMPLETED.
        """
        pps = self.job_polls_per_state
        phases = [("JOB_STATE_PENDING", None, None)] * pps + [("JOB_STATE_VALIDATING", None, None)] * pps
        ppe = self.job_polls_per_epoch
        for e in range(epochs):
            for i in range(ppe):
                phases.append(("JOB_STATE_RUNNING", e, round(100 * (i + 1) / ppe)))
        phases.append(("JOB_STATE_COMPLETED", epochs - 1, 100))
        return phases

    def _r_reinforcementFineTuningJobs(
        self, req: Request, account: str, rid: Optional[str], verb: Optional[str]
    ) -> Response:
        m = req.method
        coll = "reinforcementFineTuningJobs"
        if rid is None:
            if m == "GET":
                return self._list(req, self._items(coll, account), coll)
            if m == "POST":
                return self._create_job(req, account)
            raise _not_found(f"no route for {m} {req.path}")
        r = self._get(coll, account, rid)
        if verb is None:
            if m == "GET":
                self._poll_job(r)
                return json_response(200, self._public(r))
            if m == "DELETE":
                del self._store[coll][(account, rid)]
                return json_response(200, {})
        elif verb == "cancel" and m == "POST":
            self._body(req)
            if r["state"] in TERMINAL or r["state"] in ("JOB_STATE_CANCELLING",):
                raise _precondition(f"job is {r['state']} and cannot be cancelled")
            self._close_epoch(r)
            r["state"] = "JOB_STATE_CANCELLING"
            r["updateTime"] = self._now()
            return json_response(200, {})
        elif verb == "resume" and m == "POST":
            self._body(req)
            if r["state"] not in ("JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_PAUSED"):
                raise _precondition(f"only FAILED, CANCELLED or PAUSED jobs can be resumed (job is {r['state']})")
            epoch = (r.get("jobProgress") or {}).get("epoch", 0) or 0
            phases = r["_phases"]
            idx = next((i for i, p in enumerate(phases) if p[0] == "JOB_STATE_RUNNING" and p[1] == epoch), None)
            if idx is None:
                idx = next(i for i, p in enumerate(phases) if p[0] == "JOB_STATE_RUNNING")
            r["_cursor"] = idx
            windows = r["_epochs"]
            if windows and windows[-1]["epoch"] == phases[idx][1]:
                windows[-1]["end"] = None  # the epoch goes on (its partial traces stay)
            r["_fail_at"] = None
            r["_hold"] = False
            r.pop("status", None)
            r.pop("completedTime", None)
            self._poll_job(r, force=True)
            return json_response(200, self._public(r))
        raise _not_found(f"no route for {m} {req.path}")

    def _create_job(self, req: Request, account: str) -> Response:
        body = self._body(req)
        jid = req.q("reinforcementFineTuningJobId") or ("rft-" + uuid.uuid4().hex[:12])
        if not ID_RE.match(jid):
            raise _bad(f"invalid reinforcementFineTuningJobId {jid!r}")
        if (account, jid) in self._store["reinforcementFineTuningJobs"]:
            raise ApiError(409, f'reinforcement fine-tuning job "{jid}" already exists', 6)
        if not body.get("dataset"):
            raise _bad("dataset is required")
        if not body.get("evaluator"):
            raise _bad("evaluator is required")
        da, did = self._ref(body["dataset"], account, "datasets", "dataset")
        ea, eid = self._ref(body["evaluator"], account, "evaluators", "evaluator")
        ds = self._get("datasets", da, did)
        ev = self._get("evaluators", ea, eid)
        self._poll_dataset(ds)
        if ds["state"] != "READY":
            raise _precondition(f'dataset "{ds["name"]}" is not READY (state {ds["state"]})')
        if ev["state"] != "ACTIVE":
            raise _precondition(f'evaluator "{ev["name"]}" is not ACTIVE (state {ev["state"]})')
        eval_ds = None
        if body.get("evaluationDataset"):
            xa, xid = self._ref(body["evaluationDataset"], account, "datasets", "evaluationDataset")
            eval_ds = self._get("datasets", xa, xid)
            if eval_ds["state"] != "READY":
                raise _precondition(f'evaluation dataset "{eval_ds["name"]}" is not READY')
        tc = body.get("trainingConfig") or {}
        if not isinstance(tc, dict):
            raise _bad("trainingConfig must be an object")
        base, warm = tc.get("baseModel"), tc.get("warmStartFrom")
        if bool(base) == bool(warm):
            raise _bad("exactly one of trainingConfig.baseModel and trainingConfig.warmStartFrom must be set")
        ref = base or warm
        mm = re.fullmatch(r"accounts/([^/]+)/models/([^/#]+)", str(ref))
        if not mm:
            raise _bad(f"invalid model name {ref!r}: expected accounts/<account>/models/<id>")
        if mm.group(1) != "fireworks":
            if mm.group(1) != account:
                raise _not_found(f'model "{ref}" not found')
            self._get("models", account, mm.group(2))
        elif self.serverless_models is not None and warm is None and mm.group(2) not in self.serverless_models:
            raise _not_found(f'model "{ref}" not found')
        epochs = tc.get("epochs", 1)
        if epochs is None:
            epochs = 1
        if not isinstance(epochs, int) or isinstance(epochs, bool) or not 1 <= epochs <= 100:
            raise _bad("trainingConfig.epochs must be an integer between 1 and 100")
        out = tc.get("outputModel") or jid
        oa, oid = self._ref(out, account, "models", "trainingConfig.outputModel")
        if oa != account or not ID_RE.match(oid):
            raise _bad(f"invalid trainingConfig.outputModel {out!r}")
        if (account, oid) in self._store["models"]:
            raise ApiError(409, f'model "accounts/{account}/models/{oid}" already exists', 6)
        fields = copy.deepcopy(body)
        fields["dataset"] = ds["name"]
        fields["evaluator"] = ev["name"]
        if eval_ds is not None:
            fields["evaluationDataset"] = eval_ds["name"]
        fields.setdefault("trainingConfig", {})
        fields["trainingConfig"]["outputModel"] = f"accounts/{account}/models/{oid}"
        r = self._new("reinforcementFineTuningJobs", account, jid, fields)
        r["state"] = "JOB_STATE_PENDING"
        r["createdBy"] = f"{account}@example.com"
        r["_payload"] = copy.deepcopy(body)
        r["_epochs_n"] = epochs
        r["_phases"] = self._job_phases(epochs)
        r["_cursor"] = 0
        r["_epochs"] = []
        r["_traced"] = set()
        r["_hold"] = False
        r["_fail_at"] = None
        r["_run"] = None
        self._epochs_of[jid] = epochs
        if self.job_fails_with:
            fe = min(max(0, self.job_fail_epoch), epochs - 1)
            r["_fail_at"] = max(i for i, p in enumerate(r["_phases"]) if p[0] == "JOB_STATE_RUNNING" and p[1] == fe)
        return json_response(200, self._public(r))

    def _poll_job(self, r: dict, force: bool = False) -> None:
        if r.get("_hold") and not force:
            return
        state = r["state"]
        if state == "JOB_STATE_CANCELLING":
            self.clock.advance()
            r["state"] = "JOB_STATE_CANCELLED"
            r["updateTime"] = self._now()
            return
        if state in TERMINAL and not force:
            return
        self.clock.advance()
        phases = r["_phases"]
        idx = min(r["_cursor"], len(phases) - 1)
        run = r.get("_run")
        if (
            run is not None
            and phases[idx][1] != run["epoch"]
            or run is not None
            and phases[idx][0] == "JOB_STATE_COMPLETED"
        ):
            if run["thread"].is_alive():
                return  # the epoch's evaluator run is still going: the job stays where it is
            result = run["result"]
            r["_run"] = None
            if result is None or result.error:
                why = result.error if result is not None else "the evaluator run crashed"
                self._fail(r, f"evaluator failed in epoch {run['epoch']}: {why}")
                return
        if r.get("_fail_at") is not None and idx >= r["_fail_at"]:
            self._apply_phase(r, phases[r["_fail_at"]])
            self._fail(r, self.job_fails_with or "job failed")
            return
        r["_cursor"] = idx + 1
        self._apply_phase(r, phases[idx])

    def _apply_phase(self, r: dict, phase: tuple) -> None:
        state, epoch, percent = phase
        if state == "JOB_STATE_COMPLETED":
            self._complete(r)
            return
        r["state"] = state
        if state == "JOB_STATE_RUNNING":
            windows = r["_epochs"]
            if not windows or windows[-1]["epoch"] != epoch:
                self._close_epoch(r)
                windows.append({"epoch": epoch, "start": self.clock.now(), "end": None})
                if self.job_runs_evaluator:
                    self._start_epoch_run(r, epoch)
            n_rows = self._dataset_rows_count(r)
            total = n_rows * self._samples(r)
            done = int(total * percent / 100)
            r["jobProgress"] = {
                "epoch": epoch,
                "percent": percent,
                "totalInputRequests": total,
                "totalProcessedRequests": done,
                "successfullyProcessedRequests": done,
                "failedRequests": 0,
            }
        r["updateTime"] = self._now()

    def _close_epoch(self, r: dict) -> None:
        windows = r["_epochs"]
        if windows and windows[-1]["end"] is None:
            windows[-1]["end"] = self.clock.now()
            self._epoch_traces(r, windows[-1])

    def _complete(self, r: dict) -> None:
        # make sure every epoch has a window (set_job_state(COMPLETED) may skip them)
        for e in range(r["_epochs_n"]):
            if not any(w["epoch"] == e for w in r["_epochs"]):
                self._close_epoch(r)
                r["_epochs"].append({"epoch": e, "start": self.clock.now(), "end": None})
                self.clock.advance()
        self._close_epoch(r)
        r["state"] = "JOB_STATE_COMPLETED"
        r["_cursor"] = len(r["_phases"])
        r["jobProgress"] = {**(r.get("jobProgress") or {}), "epoch": r["_epochs_n"] - 1, "percent": 100}
        now = self._now()
        r["completedTime"] = now
        r["updateTime"] = now
        r["status"] = {"code": "OK", "message": ""}
        tc = r.get("trainingConfig") or {}
        out_name = tc["outputModel"]
        account, oid = out_name.split("/")[1], out_name.split("/")[-1]
        if (account, oid) not in self._store["models"]:
            base = tc.get("baseModel")
            warm = tc.get("warmStartFrom")
            if warm:
                wm = self._store["models"].get((account, warm.split("/")[-1]))
                base = ((wm or {}).get("peftDetails") or {}).get("baseModel") or warm
            model = self._new(
                "models",
                account,
                oid,
                {
                    "displayName": oid,
                    "kind": "HF_PEFT_ADDON",
                    "state": "READY",
                    "status": {"code": "OK", "message": ""},
                    "peftDetails": {
                        "baseModel": base,
                        "r": tc.get("loraRank", 8),
                        "targetModules": ["q_proj", "k_proj", "v_proj", "o_proj"],
                    },
                    "fineTuningJob": r["name"],
                    "supportsLora": True,
                },
            )
            model["_created"] = self.clock.now()

    def _fail(self, r: dict, message: str) -> None:
        self._close_epoch(r)
        r["state"] = "JOB_STATE_FAILED"
        r["status"] = {"code": "INTERNAL", "message": message}
        r["updateTime"] = self._now()
        r["_hold"] = False

    # ---- the evaluator, run once per epoch (job_runs_evaluator)
    def _run_pending(self, r: dict) -> bool:
        run = r.get("_run")
        return run is not None and run["thread"].is_alive()

    def _start_epoch_run(self, r: dict, epoch: int) -> None:
        """Start the evaluator for ``epoch`` in a thread (the lock is held here; the run is not)."""
        ev_acct, ev_id = r["evaluator"].split("/")[1], r["evaluator"].split("/")[-1]
        ev = self._store["evaluators"].get((ev_acct, ev_id)) or {}
        ds_acct, ds_id = r["dataset"].split("/")[1], r["dataset"].split("/")[-1]
        ds = self._store["datasets"].get((ds_acct, ds_id)) or {}
        account = r["_account"]
        secrets = {x.get("keyName"): x.get("_value") for (a, _), x in self._store["secrets"].items() if a == account}
        kw = dict(
            tarball=ev.get("_tarball") or b"",
            entry_point=ev.get("entryPoint") or "",
            dataset=ds.get("_file") or b"",
            epoch=epoch,
            num_runs=int((r.get("inferenceParameters") or {}).get("responseCandidatesCount") or 1),
            policy_model=epoch_model(account, r["_id"], epoch),
            inference_url=self.url + "/inference/v1",
            secrets=secrets,
            timeout=self.evaluator_run_timeout,
        )
        run = {"epoch": epoch, "result": None}
        runs = self.epoch_runs.setdefault(r["_id"], [])

        def target() -> None:
            try:
                res = run_evaluator_epoch(**kw)
            except Exception:  # pragma: no cover - a bug in the fake launcher
                import traceback

                self.errors.append(traceback.format_exc())
                return
            run["result"] = res
            with self.lock:
                runs.append(res)

        run["thread"] = threading.Thread(target=target, name=f"fake-rft-{r['_id']}-e{epoch}", daemon=True)
        r["_run"] = run
        run["thread"].start()

    # ---- job traces
    def _samples(self, r: dict) -> int:
        n = (r.get("inferenceParameters") or {}).get("responseCandidatesCount") or 1
        try:
            return max(1, min(4, int(n)))
        except (TypeError, ValueError):
            return 1

    def _dataset_rows(self, r: dict) -> list:
        acct, did = r["dataset"].split("/")[1], r["dataset"].split("/")[-1]
        ds = self._store["datasets"].get((acct, did))
        content = (ds or {}).get("_file") or b""
        rows = []
        for i, line in enumerate(content.splitlines()):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                continue
            if not isinstance(obj, dict):
                continue
            msgs = [
                {"role": m["role"], "content": m.get("content")}
                for m in (obj.get("messages") or [])
                if isinstance(m, dict) and isinstance(m.get("role"), str) and m.get("role") != "assistant"
            ]
            meta = obj.get("input_metadata") if isinstance(obj.get("input_metadata"), dict) else {}
            row_id = meta.get("row_id") if isinstance(meta.get("row_id"), str) else f"row_{len(rows)}"
            rows.append((row_id, msgs))
        if self.job_trace_rows is not None:
            rows = rows[: self.job_trace_rows]
        return rows

    def _dataset_rows_count(self, r: dict) -> int:
        return len(self._dataset_rows(r)) or 1

    def _epoch_traces(self, r: dict, window: dict) -> None:
        e = window["epoch"]
        if not self.job_traces or e in r["_traced"]:
            return
        r["_traced"].add(e)
        rows = self._dataset_rows(r)
        samples = self._samples(r)
        total = len(rows) * samples
        if not total:
            return
        start, end = window["start"], window["end"]
        span = (end - start) / (total + 1)
        tc = r.get("trainingConfig") or {}
        model = tc["outputModel"] if e > 0 else (tc.get("baseModel") or tc.get("warmStartFrom"))
        jid = r["_id"]
        k = 0
        for ri, (row_id, msgs) in enumerate(rows):
            for s in range(samples):
                k += 1
                params = {"choice_index": s, "epoch": e, "quality": "base" if e == 0 else "tuned", "job": jid}
                try:
                    content = self.policy(model, msgs, params)
                except Exception as ex:  # a broken custom policy must not break the fake
                    content = f"policy error: {ex}"
                tags = [
                    f"rollout_id:{jid}-e{e}-r{ri}-s{s}",
                    f"invocation_id:{jid}",
                    f"experiment_id:{jid}-epoch-{e}",
                    f"run_id:run-{s}",
                    f"row_id:{row_id}",
                ]
                if self.job_epoch_tag:
                    tags.append(f"epoch:{e}")
                self.tracing.add_trace(
                    tags=tags,
                    messages=msgs,
                    output={"role": "assistant", "content": content},
                    timestamp=start + span * k,
                    account=r["_account"],
                    metadata={"model": model, "job": r["name"], "epoch": e},
                )

    # ================================================================== models, deployments
    def _public_models(self, req: Request, rest: Optional[str]) -> Response:
        names = list(self.serverless_models or DEFAULT_SERVERLESS)
        if rest is None:
            items = [self._base_model_obj(n) for n in names]
            return self._list(req, items, "models")
        if ":" in rest or "/" in rest:
            raise _not_found(f"no route for GET {req.path}")
        if self.serverless_models is not None and rest not in self.serverless_models:
            raise _not_found(f'model "accounts/fireworks/models/{rest}" not found')
        return json_response(200, self._base_model_obj(rest))

    @staticmethod
    def _base_model_obj(mid: str) -> dict:
        return {
            "name": f"accounts/fireworks/models/{mid}",
            "displayName": mid,
            "kind": "HF_BASE_MODEL",
            "state": "READY",
            "supportsServerless": True,
            "supportsLora": True,
            "tunable": True,
            "rlTunable": True,
            "contextLength": 32768,
        }

    def _r_models(self, req: Request, account: str, rid: Optional[str], verb: Optional[str]) -> Response:
        m = req.method
        if rid is None:
            if m == "GET":
                return self._list(req, self._items("models", account), "models")
            raise _not_found(f"no route for {m} {req.path}")
        r = self._get("models", account, rid)
        if verb is None and m == "GET":
            return json_response(200, self._public(r))
        if verb is None and m == "DELETE":
            del self._store["models"][(account, rid)]
            return json_response(200, {})
        raise _not_found(f"no route for {m} {req.path}")

    # ================================================================== inference
    def _chat(self, req: Request, account: str, tags: Optional[list], upstream: Optional[str] = None) -> Response:
        def err(status: int, msg: str) -> Response:
            if tags is not None:
                return detail(status, msg)
            return json_response(status, {"message": msg, "code": "INVALID_ARGUMENT", "type": "error"})

        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            return err(400, "request body is not valid JSON")
        problem = validate_chat_body(body)
        if problem:
            return err(400, problem)
        model = body["model"]
        with self.lock:
            ok = upstream is not None or self.servable(model, account)
        if not ok:
            return json_response(404, MODEL_NOT_FOUND)
        if self.latency:
            time.sleep(self.latency)
        messages = body["messages"]
        n = body.get("n") or 1
        start = self.clock.now()
        replies = []
        params = {k: v for k, v in body.items() if k not in ("messages", "model")}
        for i in range(n):
            try:
                replies.append(self.policy(model, messages, {**params, "choice_index": i}))
            except Exception as ex:
                return err(500, f"policy error: {ex}")
        completion = build_completion(model, replies, messages, body)
        with self.lock:
            self.inference_calls += 1
            self.inference_models.append(str(model))
            if tags is not None:
                meta_tags = []
                md = body.get("metadata")
                if isinstance(md, dict) and isinstance(md.get("tags"), list):
                    meta_tags = [str(t) for t in md["tags"]]
                self.tracing.add_trace(
                    tags=tags + meta_tags,
                    messages=messages,
                    output=completion["choices"][0]["message"],
                    timestamp=start,
                    end_time=self.clock.now(),
                    account=account,
                    metadata={
                        "model": model,
                        "usage": completion["usage"],
                        **({"upstream_base_url": upstream} if upstream else {}),
                    },
                    tools=body.get("tools"),
                )
        if body.get("stream"):
            resp = Response(200, b"", content_type="text/event-stream")
            resp.stream = sse_chunks(completion)
            return resp
        return json_response(200, completion)

    def _proxy_completion(self, req: Request, g: dict, account: str) -> Response:
        upstream = None
        if g.get("encoded"):
            try:
                upstream = decode_base_url(g["encoded"])
            except Exception:
                return detail(400, "invalid encoded_base_url")
        tags = [
            f"rollout_id:{g['rollout_id']}",
            f"invocation_id:{g['invocation_id']}",
            f"experiment_id:{g['experiment_id']}",
            f"run_id:{g['run_id']}",
            f"row_id:{g['row_id']}",
            f"insertion_id:{uuid.uuid4()}",
        ]
        return self._chat(req, account, tags=tags, upstream=upstream)
