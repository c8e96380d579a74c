"""The tracing-gateway surface of :class:`~tests.fakes.fireworks.FakeFireworks`.

Routes (all need ``Authorization: Bearer <known key>``; errors are FastAPI-style
``{"detail": ...}`` like the open-source proxy in ``eval_protocol/proxy``).  Each route is served at
the root and under every prefix in ``FakeFireworks(tracing_prefixes=...)`` (default ``/tracing``):

``POST [/v1][/project_id/{p}]/rollout_id/{r}/invocation_id/{i}/experiment_id/{e}/run_id/{u}/row_id/{row}[/encoded_base_url/{b64}][/v1]/chat/completions``
    answers like Fireworks inference (same policy, same model check unless an
    ``encoded_base_url`` names another upstream -- which the fake never contacts) and records a
    trace tagged ``rollout_id: invocation_id: experiment_id: run_id: row_id: insertion_id:``
    (+ ``metadata.tags`` of the body).
``POST /logs``, ``POST /v1/logs``
    body ``{"program","status","message","tags","extras"}`` (what ``FireworksTracingHttpHandler``
    sends); stored with the server time; ``severity`` = ``extras.level`` or INFO.
``GET /logs``, ``GET /v1/logs``  ``?tags=..(repeat, all must match)&limit=100&hours_back=&program=``
    -> ``{"entries": [{timestamp, message, severity, tags, status, extras, program}]}``, newest first.
``GET /v1/status``, ``GET /status``  ``?rollout_id=``
    -> ``{"rollout_id", "status": {"code": N} | null, "extras": {...} | null}`` from the newest log
    entry of that rollout that carries a status (only the code, as the real one: clients backfill
    message/details from ``/logs``).
``GET /v1/traces/pointwise`` (also ``/traces/pointwise``, ``/v1/project_id/{p}/traces/pointwise``)
    follows eval-protocol's open-source gateway (reference/fireworks.md §5.2b): **one rollout's latest
    trace**.  The tags must include a ``rollout_id:`` tag, else **500** (the OSS code takes ``max()`` of
    an empty set); a rollout the gateway never saw -> **500** ``No insertion_ids found in Redis for
    rollout '…'``.  Answer ``{"project_id", "total_traces": 1, "traces": [trace]}``.
``GET /v1/traces`` (also ``/traces`` and project variants)
    ``?tags=..&limit=100&from_timestamp=&to_timestamp=&hours_back=&sleep_between_gets=&max_retries=``:
    every trace carrying all tags, newest first, at most ``limit`` in total -- **no** ``page`` parameter
    (400 if sent) and no ``meta``.  An unknown ``rollout_id:`` tag -> 500; nothing found -> 200 with
    ``traces: []``.  ``sleep_between_gets`` (default 2.5 as the OSS gateway) is recorded per request in
    ``TracingStore.sleeps`` (the fake does not sleep) so tests can check what a client asks for.

Trace shape (parsed by eval-protocol ``convert_trace_dict_to_evaluation_row``)::

    {"id", "name", "tags": [...], "timestamp": "...Z", "input": {"messages": [...]},
     "output": {"role": "assistant", "content": ...}, "metadata": {...},
     "observations": [{"id", "type": "GENERATION", "name", "start_time", "end_time", "input",
                        "output", "parent_observation_id": null}]}

Timestamps come from the fake clock of the server (``fake.clock``), so job epochs and traces share
one time line.  Traces and logs are scoped to the account of the API key that wrote them.
"""

from __future__ import annotations

import base64
import copy
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from ._http import Request, Response, json_response

_PROXY = re.compile(
    r"^(?:/v1)?(?:/project_id/(?P<project>[^/]+))?"
    r"/rollout_id/(?P<rollout_id>[^/]+)/invocation_id/(?P<invocation_id>[^/]+)"
    r"/experiment_id/(?P<experiment_id>[^/]+)/run_id/(?P<run_id>[^/]+)/row_id/(?P<row_id>[^/]+)"
    r"(?:/encoded_base_url/(?P<encoded>[^/]+))?(?:/v1)?/chat/completions$"
)
_TRACES = re.compile(r"^(?:/v1)?(?:/project_id/(?P<project>[^/]+))?/traces(?P<pointwise>/pointwise)?$")
_LOGS = re.compile(r"^(?:/v1)?/logs$")
_STATUS = re.compile(r"^(?:/v1)?/status$")


def rfc3339(t: datetime) -> str:
    t = t.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        t = value
    else:
        s = str(value).strip()
        if s.endswith("Z") or s.endswith("z"):
            s = s[:-1] + "+00:00"
        t = datetime.fromisoformat(s)
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc)


def detail(status: int, message: Any) -> Response:
    return json_response(status, {"detail": message})


class TracingStore:
    """Traces + structured logs.  Not locked itself: the owning server holds its lock."""

    def __init__(self, clock):
        self.clock = clock
        self.traces: list[dict] = []  # internal: public fields + "_t", "_account"
        self.logs: list[dict] = []
        self.sleeps: list[float] = []  # sleep_between_gets of every /v1/traces[/pointwise] request

    # ------------------------------------------------------------------ writing
    def add_trace(
        self,
        *,
        tags: list,
        messages: list,
        output: Any = None,
        timestamp: Any = None,
        account: str = "",
        name: str = "chat-completion",
        metadata: Optional[dict] = None,
        trace_id: Optional[str] = None,
        tools: Any = None,
        end_time: Any = None,
    ) -> dict:
        t = parse_time(timestamp) if timestamp is not None else self.clock.now()
        end = parse_time(end_time) if end_time is not None else t
        msgs = copy.deepcopy(list(messages))
        if output is None and msgs and isinstance(msgs[-1], dict) and msgs[-1].get("role") == "assistant":
            output = msgs.pop()
        inp: dict = {"messages": msgs}
        if tools:
            inp["tools"] = tools
        tid = trace_id or uuid.uuid4().hex
        trace = {
            "id": tid,
            "name": name,
            "tags": [str(x) for x in tags],
            "timestamp": rfc3339(t),
            "input": inp,
            "output": copy.deepcopy(output),
            "metadata": dict(metadata or {}),
            "observations": [
                {
                    "id": uuid.uuid4().hex[:16],
                    "type": "GENERATION",
                    "name": "litellm-acompletion",
                    "start_time": rfc3339(t),
                    "end_time": rfc3339(end),
                    "input": copy.deepcopy(msgs),
                    "output": copy.deepcopy(output),
                    "parent_observation_id": None,
                }
            ],
            "_t": t,
            "_account": account,
        }
        self.traces.append(trace)
        return self.public(trace)

    def add_log(self, body: dict, account: str, timestamp: Any = None) -> dict:
        now = parse_time(timestamp) if timestamp is not None else self.clock.now()
        extras = body.get("extras") if isinstance(body.get("extras"), dict) else None
        entry = {
            "timestamp": rfc3339(now),
            "message": body.get("message") if isinstance(body.get("message"), str) else str(body.get("message", "")),
            "severity": str((extras or {}).get("level") or body.get("severity") or "INFO"),
            "tags": list(body.get("tags") or []),
            "status": body.get("status") if isinstance(body.get("status"), dict) else None,
            "extras": extras,
            "program": body.get("program") if isinstance(body.get("program"), str) else "eval_protocol",
            "_t": now,
            "_account": account,
        }
        self.logs.append(entry)
        return self.public(entry)

    @staticmethod
    def public(item: dict) -> dict:
        return {k: copy.deepcopy(v) for k, v in item.items() if not k.startswith("_")}

    # ------------------------------------------------------------------ reading
    def find_traces(
        self,
        tags: list,
        account: Optional[str] = None,
        from_ts: Optional[datetime] = None,
        to_ts: Optional[datetime] = None,
        name: Optional[str] = None,
    ) -> list[dict]:
        """Matching traces, newest first (public dicts)."""
        want = set(tags)
        out = []
        for tr in self.traces:
            if account is not None and tr["_account"] != account:
                continue
            if not want.issubset(tr["tags"]):
                continue
            if from_ts and tr["_t"] < from_ts:
                continue
            if to_ts and tr["_t"] > to_ts:
                continue
            if name and tr.get("name") != name:
                continue
            out.append(tr)
        out.sort(key=lambda x: x["_t"], reverse=True)
        return [self.public(t) for t in out]

    def status_of(self, rollout_id: str, account: str) -> dict:
        tag = f"rollout_id:{rollout_id}"
        for entry in sorted(self.logs, key=lambda e: e["_t"], reverse=True):
            if entry["_account"] != account or tag not in entry["tags"]:
                continue
            st = entry.get("status")
            if isinstance(st, dict) and isinstance(st.get("code"), int):
                return {
                    "rollout_id": rollout_id,
                    "status": {"code": st["code"]},
                    "extras": copy.deepcopy(entry["extras"]),
                }
        return {"rollout_id": rollout_id, "status": None, "extras": None}

    # ------------------------------------------------------------------ HTTP
    @staticmethod
    def strip_prefix(path: str, prefixes) -> Optional[str]:
        for p in prefixes:
            if not p:
                rest = path
            elif path == p or path.startswith(p + "/"):
                rest = path[len(p) :]
            else:
                continue
            if _PROXY.match(rest) or _TRACES.match(rest) or _LOGS.match(rest) or _STATUS.match(rest):
                return rest
        return None

    @staticmethod
    def match_proxy(rest: str) -> Optional[dict]:
        m = _PROXY.match(rest)
        return m.groupdict() if m else None

    def handle(self, req: Request, rest: str, account: str) -> Response:
        """Logs, status and traces routes (the proxy route is served by the owning server)."""
        if _LOGS.match(rest):
            if req.method == "POST":
                return self._post_log(req, account)
            if req.method == "GET":
                return self._get_logs(req, account)
            return detail(405, "Method Not Allowed")
        if req.method != "GET":
            return detail(405, "Method Not Allowed")
        if _STATUS.match(rest):
            rid = req.q("rollout_id")
            if not rid:
                return detail(
                    422, [{"loc": ["query", "rollout_id"], "msg": "field required", "type": "value_error.missing"}]
                )
            return json_response(200, self.status_of(rid, account))
        m = _TRACES.match(rest)
        return self._get_traces(req, account, m.group("project") or "default", bool(m.group("pointwise")))

    def _post_log(self, req: Request, account: str) -> Response:
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            return detail(400, "body is not valid JSON")
        if not isinstance(body, dict):
            return detail(422, "body must be an object")
        tags = body.get("tags")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            return detail(422, "'tags' must be a list of strings")
        st = body.get("status")
        if st is not None and (
            not isinstance(st, dict) or (st.get("code") is not None and not isinstance(st.get("code"), int))
        ):
            return detail(422, "'status' must be null or an object with an integer code")
        self.add_log(body, account)
        return json_response(200, {"status": "ok"})

    def _window(self, req: Request):
        from_s, to_s, hours = req.q("from_timestamp"), req.q("to_timestamp"), req.q("hours_back")
        from_ts = to_ts = None
        try:
            if from_s:
                from_ts = parse_time(from_s)
            if to_s:
                to_ts = parse_time(to_s)
        except ValueError:
            raise _BadQuery("from_timestamp/to_timestamp must be ISO 8601")
        if from_ts is None and to_ts is None and hours:
            try:
                h = float(hours)
            except ValueError:
                raise _BadQuery("hours_back must be a number")
            to_ts = self.clock.peek()
            from_ts = to_ts - timedelta(hours=h)
        return from_ts, to_ts

    def _int(self, req: Request, name: str, default: int, lo: int, hi: int) -> int:
        raw = req.q(name)
        if raw is None or raw == "":
            return default
        try:
            v = int(raw)
        except ValueError:
            raise _BadQuery(f"{name} must be an integer")
        if v < lo:
            raise _BadQuery(f"{name} must be >= {lo}")
        return min(v, hi)

    def _get_logs(self, req: Request, account: str) -> Response:
        tags = req.q_all("tags")
        if not tags:
            return detail(400, "at least one tag is required")
        try:
            limit = self._int(req, "limit", 100, 1, 1000)
            hours = req.q("hours_back")
            since = None
            if hours:
                since = self.clock.peek() - timedelta(hours=float(hours))
        except (_BadQuery, ValueError) as e:
            return detail(422, str(e))
        program = req.q("program")
        want = set(tags)
        entries = [
            e
            for e in self.logs
            if e["_account"] == account
            and want.issubset(e["tags"])
            and (since is None or e["_t"] >= since)
            and (not program or e["program"] == program)
        ]
        entries.sort(key=lambda e: e["_t"], reverse=True)
        return json_response(200, {"entries": [self.public(e) for e in entries[:limit]]})

    def _get_traces(self, req: Request, account: str, project: str, pointwise: bool) -> Response:
        tags = req.q_all("tags")
        if not tags:
            return detail(400, "At least one tag is required to fetch traces")
        if req.q("page") is not None:
            return detail(400, "unknown query parameter 'page'")
        try:
            limit = self._int(req, "limit", 100, 1, 1000)
            from_ts, to_ts = self._window(req)
            raw_sleep = req.q("sleep_between_gets")
            sleep = 2.5 if raw_sleep in (None, "") else float(raw_sleep)
        except (_BadQuery, ValueError) as e:
            return detail(422, str(e))
        rollouts = [t.split(":", 1)[1] for t in tags if t.startswith("rollout_id:")]
        if pointwise and not rollouts:
            # the OSS gateway: max() of the (empty) insertion ids of no rollout -> an internal error
            return detail(500, "max() arg is an empty sequence")
        for rid in rollouts:
            if not any(f"rollout_id:{rid}" in tr["tags"] and tr["_account"] == account for tr in self.traces):
                return detail(500, f"No insertion_ids found in Redis for rollout '{rid}'")
        self.sleeps.append(sleep)
        found = self.find_traces(tags, account, from_ts, to_ts, req.q("name"))
        if pointwise:
            found = found[:1]
        chunk = found[:limit]
        return json_response(200, {"project_id": project, "total_traces": len(chunk), "traces": chunk})


class _BadQuery(ValueError):
    pass


def decode_base_url(encoded: str) -> str:
    pad = "=" * (-len(encoded) % 4)
    return base64.urlsafe_b64decode(encoded + pad).decode("utf-8")
