"""The Fireworks control plane through the official ``fireworks-ai`` SDK: the only code that calls it.

Always constructed with an explicit ``base_url`` and ``account_id`` (so a fake on loopback can stand in).
Every method returns a small frozen record (:mod:`svgrft.clients.fireworks_records`) or nothing; every SDK
exception becomes an svgrft error with a hint (:mod:`svgrft.clients.fireworks_errors`). ``get_*`` return
None when the resource does not exist (404). Bodies svgrft builds in wire form (a job, a deployment) are
POSTed as they are, through the SDK's own transport (auth, retries, error types).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from svgrft.clients.fireworks_errors import KEY_HINT, NoDatasetFileError, api_errors
from svgrft.clients.fireworks_records import (
    DatasetRecord,
    DeployedModelRecord,
    DeploymentRecord,
    EvaluatorRecord,
    JobRecord,
    ModelRecord,
    wire,
)
from svgrft.errors import ApiError, AuthError, ConfigError, ConflictError, NetworkError

if TYPE_CHECKING:
    from svgrft.config import Settings

T = TypeVar("T")


def require_key(settings: Settings) -> str:
    key = settings.secret("FIREWORKS_API_KEY")
    if not key:
        raise ConfigError(
            "FIREWORKS_API_KEY is not set",
            hint="export FIREWORKS_API_KEY=... or put it in .env "
            "(create a key at https://app.fireworks.ai/settings/users/api-keys)",
        )
    return key


def resolve_account_id(base_url: str, api_key: str, timeout: float = 15.0) -> str:
    """Account id from ``GET {base}/verifyApiKey`` (header ``x-fireworks-account-id``), as eval-protocol does."""
    import httpx

    try:
        r = httpx.get(f"{base_url}/verifyApiKey", headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout)
    except httpx.HTTPError as e:
        raise NetworkError(
            f"cannot reach Fireworks at {base_url} to look up the account ({type(e).__name__})",
            hint="check your network or FIREWORKS_BASE_URL, or set FIREWORKS_ACCOUNT_ID",
        ) from None
    if r.status_code in (401, 403):
        raise AuthError(
            f"Fireworks rejected the API key ({r.status_code}) while looking up the account",
            hint=KEY_HINT,
            status=r.status_code,
        )
    account = r.headers.get("x-fireworks-account-id")
    if r.status_code != 200 or not account:
        raise ApiError(
            f"could not resolve the Fireworks account (HTTP {r.status_code})",
            hint="set FIREWORKS_ACCOUNT_ID explicitly",
            status=r.status_code,
        )
    return account


def split_name(name: str, collection: str, account: str) -> tuple[str, str]:
    """``accounts/a/<collection>/x`` → (a, x); a bare id → (account, id)."""
    parts = name.strip().split("/")
    if len(parts) == 4 and parts[0] == "accounts" and parts[2] == collection:
        return parts[1], parts[3]
    return account, name.strip()


def secret_id_for(key_name: str) -> str:
    """``OPENAI_API_KEY`` → ``openai-api-key`` (eval-protocol's convention)."""
    return key_name.strip().lower().replace("_", "-")


@dataclass
class FireworksClient:
    sdk: Any  # fireworks.Fireworks
    account_id: str
    base_url: str

    def errors(self, what: str):
        return api_errors(what, self.base_url)

    def name(self, collection: str, resource_id: str) -> str:
        if resource_id.startswith("accounts/"):
            return resource_id
        return f"accounts/{self.account_id}/{collection}/{resource_id}"

    def _or_none(self, what: str, call: Callable[[], T]) -> T | None:
        """``call()`` under :meth:`errors`, None when the resource does not exist (404)."""
        import fireworks

        with self.errors(what):
            try:
                return call()
            except fireworks.NotFoundError:
                return None

    def _post_wire(self, what: str, path: str, body: dict, params: dict, cast_to: Any) -> dict:
        with self.errors(what):
            return wire(
                self.sdk.post(
                    f"/v1/accounts/{self.account_id}/{path}", cast_to=cast_to, body=body, options={"params": params}
                )
            )

    # -- secrets ---------------------------------------------------------------------------
    def upsert_secret(self, key_name: str, value: str) -> tuple[str, str]:
        """Create or update secret ``key_name``; returns (resource name, "created"|"updated")."""
        secret_id = secret_id_for(key_name)
        sdk, acct = self.sdk, self.account_id
        exists = self._or_none(f"reading secret {secret_id}", lambda: sdk.secrets.get(secret_id, account_id=acct))
        if exists is None:
            try:
                with self.errors(f"creating secret {secret_id}"):
                    s = sdk.secrets.create(account_id=acct, key_name=key_name, name=secret_id, value=value)
                return s.name or self.name("secrets", secret_id), "created"
            except ConflictError:
                pass  # created concurrently: fall through to update
        with self.errors(f"updating secret {secret_id}"):
            s = sdk.secrets.update(secret_id, account_id=acct, key_name=key_name, value=value)
        return s.name or self.name("secrets", secret_id), "updated"

    # -- datasets --------------------------------------------------------------------------
    def get_dataset(self, dataset_id: str) -> DatasetRecord | None:
        acct, did = split_name(dataset_id, "datasets", self.account_id)
        got = self._or_none(f"looking up dataset {did}", lambda: self.sdk.datasets.get(did, account_id=acct))
        return None if got is None else DatasetRecord.from_wire(got)

    def create_dataset(self, dataset_id: str, *, display_name: str, example_count: int) -> None:
        """An empty dataset to upload a file into; ConflictError when it exists."""
        body = {
            "display_name": display_name[:200],
            "example_count": str(example_count),
            "format": "FORMAT_UNSPECIFIED",
            "eval_protocol": {},
        }
        with self.errors(f"creating dataset {dataset_id}"):
            self.sdk.datasets.create(dataset_id=dataset_id, dataset=body, account_id=self.account_id)

    def upload_dataset(self, dataset_id: str, filename: str, data: bytes) -> None:
        """``datasets:upload`` (multipart) of one JSONL file."""
        with self.errors(f"uploading {filename} to dataset {dataset_id}"):
            self.sdk.datasets.upload(dataset_id, account_id=self.account_id, file=(filename, data, "application/jsonl"))

    def download_dataset(
        self, dataset: str, *, prefer: tuple[str, ...] = (), max_bytes: int = 200 * 1024 * 1024, timeout: float = 60.0
    ) -> bytes:
        """The uploaded file(s) of a dataset (``datasets.get_download_endpoint`` + the signed URLs), one size
        budget across them. With ``prefer`` (name suffixes) only the files ending so, if there are any.
        NotFoundError when the dataset does not exist; NoDatasetFileError when it has no file."""
        from svgrft.clients.signed_url import fetch_signed

        acct, did = split_name(dataset, "datasets", self.account_id)
        with self.errors(f"getting the download link of dataset {did}"):
            resp = wire(self.sdk.datasets.get_download_endpoint(did, account_id=acct))
        urls = resp.get("filenameToSignedUrls")
        urls = sorted(urls.items()) if isinstance(urls, dict) else []
        preferred = [(f, u) for f, u in urls if prefer and str(f).endswith(prefer)]
        if not urls:
            raise NoDatasetFileError(
                f"dataset {did} has no downloadable file", hint="upload it again with `svgrft dataset upload`"
            )
        chunks: list[bytes] = []
        for _name, url in preferred or urls:  # one size budget across the files
            chunks.append(fetch_signed(str(url), max_bytes=max_bytes - sum(map(len, chunks)), timeout=timeout))
        return b"".join(chunks)

    # -- evaluators ------------------------------------------------------------------------
    def get_evaluator(self, evaluator_id: str) -> EvaluatorRecord | None:
        acct, eid = split_name(evaluator_id, "evaluators", self.account_id)
        got = self._or_none(f"looking up evaluator {eid}", lambda: self.sdk.evaluators.get(eid, account_id=acct))
        return None if got is None else EvaluatorRecord.from_wire(got)

    def create_evaluator(
        self,
        evaluator_id: str,
        *,
        display_name: str,
        description: str,
        entry_point: str,
        commit_hash: str,
        requirements: str,
    ) -> None:
        """``POST evaluatorsV2`` (no code yet: :meth:`upload_evaluator_code`); ConflictError when it exists."""
        body = {
            "display_name": display_name,
            "description": description,
            "entry_point": entry_point,
            "commit_hash": commit_hash,
            "requirements": requirements,
        }
        with self.errors(f"creating evaluator {evaluator_id}"):
            self.sdk.evaluators.create(account_id=self.account_id, evaluator_id=evaluator_id, evaluator=body)

    def upload_evaluator_code(self, evaluator_id: str, filename: str, data: bytes, *, backoff: float = 1.0) -> None:
        """``:getUploadEndpoint`` → PUT the tarball to the signed URL → ``:validateUpload`` (the build starts)."""
        from svgrft.clients.signed_url import put_signed

        acct = self.account_id
        with self.errors(f"getting the upload URL of evaluator {evaluator_id}"):
            resp = wire(
                self.sdk.evaluators.get_upload_endpoint(
                    evaluator_id, account_id=acct, filename_to_size={filename: str(len(data))}
                )
            )
        urls = resp.get("filenameToSignedUrls")
        url = urls.get(filename) if isinstance(urls, dict) else None
        if not url:
            raise ApiError(
                f"Fireworks returned no upload URL for evaluator {evaluator_id}", hint="run the same command again"
            )
        put_signed(str(url), data, what="the evaluator tarball", backoff=backoff)
        with self.errors(f"validating the upload of evaluator {evaluator_id}"):
            self.sdk.evaluators.validate_upload(evaluator_id, account_id=acct, body={})

    def delete_evaluator(self, evaluator_id: str) -> bool:
        """Delete; False when it was already gone (404)."""
        gone = self._or_none(
            f"deleting evaluator {evaluator_id}",
            lambda: self.sdk.evaluators.delete(evaluator_id, account_id=self.account_id) or True,
        )
        return gone is not None

    def evaluator_build_log(self, evaluator_id: str, *, max_chars: int = 20_000) -> str:
        """The tail of the evaluator's build log (secrets redacted), or '' when it is not available."""
        from svgrft.clients.signed_url import read_signed_text
        from svgrft.errors import SvgrftError
        from svgrft.redact import redact

        try:
            with self.errors(f"getting the build log of evaluator {evaluator_id}"):
                resp = wire(self.sdk.evaluators.get_build_log_endpoint(evaluator_id, account_id=self.account_id))
        except SvgrftError:
            return ""
        uri = resp.get("buildLogSignedUri")
        text = read_signed_text(str(uri)) if uri else None
        return redact(text[-max_chars:]) if text else ""

    # -- reinforcement fine-tuning jobs ----------------------------------------------------
    def get_job(self, job_id: str) -> JobRecord | None:
        got = self._or_none(
            f"getting RFT job {job_id}",
            lambda: self.sdk.reinforcement_fine_tuning_jobs.get(job_id, account_id=self.account_id),
        )
        return None if got is None else JobRecord.from_wire(got, self.account_id)

    def list_jobs(self, *, state: str | None = None, limit: int = 50) -> list[JobRecord]:
        """Up to ``limit`` jobs in the API's order; ``state`` (``JOB_STATE_…``) filters on the server."""
        kwargs: dict[str, Any] = {"account_id": self.account_id, "page_size": min(limit, 200)}
        if state:
            kwargs["filter"] = f'state="{state}"'
        out: list[JobRecord] = []
        with self.errors("listing RFT jobs"):
            for job in self.sdk.reinforcement_fine_tuning_jobs.list(**kwargs):
                out.append(JobRecord.from_wire(job, self.account_id))
                if len(out) >= limit:
                    break
        return out

    def create_job(self, job_id: str, payload: dict[str, Any]) -> JobRecord:
        """``POST …/reinforcementFineTuningJobs?reinforcementFineTuningJobId=<job_id>`` with ``payload`` (the
        wire body) as it is; ConflictError when the job (or its output model) exists."""
        from fireworks.types import ReinforcementFineTuningJob

        job = self._post_wire(
            f"creating RFT job {job_id}",
            "reinforcementFineTuningJobs",
            payload,
            {"reinforcementFineTuningJobId": job_id},
            ReinforcementFineTuningJob,
        )
        return JobRecord.from_wire(job, self.account_id)

    def cancel_job(self, job_id: str) -> None:
        with self.errors(f"cancelling RFT job {job_id}"):
            self.sdk.reinforcement_fine_tuning_jobs.cancel(job_id, account_id=self.account_id, body={})

    def resume_job(self, job_id: str) -> JobRecord:
        with self.errors(f"resuming RFT job {job_id}"):
            job = self.sdk.reinforcement_fine_tuning_jobs.resume(job_id, account_id=self.account_id, body={})
        return JobRecord.from_wire(job, self.account_id)

    # -- models, deployments, LoRA (using a trained model) ---------------------------------
    def get_model(self, model: str) -> ModelRecord | None:
        acct, mid = split_name(model, "models", self.account_id)
        got = self._or_none(f"getting model {acct}/{mid}", lambda: self.sdk.models.get(mid, account_id=acct))
        return None if got is None else ModelRecord.from_wire(got)

    def create_deployment(self, deployment_id: str, body: dict[str, Any]) -> DeploymentRecord:
        """``POST …/deployments?deploymentId=<id>`` with ``body`` (the wire body) as it is."""
        from fireworks.types import Deployment

        return DeploymentRecord.from_wire(
            self._post_wire(
                f"creating deployment {deployment_id}", "deployments", body, {"deploymentId": deployment_id}, Deployment
            )
        )

    def get_deployment(self, deployment_id: str) -> DeploymentRecord | None:
        acct, did = split_name(deployment_id, "deployments", self.account_id)
        got = self._or_none(f"getting deployment {did}", lambda: self.sdk.deployments.get(did, account_id=acct))
        return None if got is None else DeploymentRecord.from_wire(got)

    def list_deployments(self, *, show_deleted: bool = False) -> list[DeploymentRecord]:
        kw: dict[str, Any] = {"account_id": self.account_id, "page_size": 200}
        if show_deleted:
            kw["show_deleted"] = True
        with self.errors("listing deployments"):
            return [DeploymentRecord.from_wire(d) for d in self.sdk.deployments.list(**kw)]

    def delete_deployment(self, deployment_id: str, *, ignore_checks: bool = False) -> bool:
        """Delete; False when it was already gone (404)."""
        acct, did = split_name(deployment_id, "deployments", self.account_id)
        kw: dict[str, Any] = {"account_id": acct}
        if ignore_checks:
            kw["ignore_checks"] = True
        return (
            self._or_none(f"deleting deployment {did}", lambda: self.sdk.deployments.delete(did, **kw) or True)
            is not None
        )

    def load_lora(self, *, model: str, deployment: str) -> DeployedModelRecord:
        with self.errors(f"loading {model} onto {deployment}"):
            return DeployedModelRecord.from_wire(
                self.sdk.lora.load(account_id=self.account_id, model=model, deployment=deployment)
            )

    def get_deployed_model(self, deployed_model_id: str) -> DeployedModelRecord | None:
        acct, did = split_name(deployed_model_id, "deployedModels", self.account_id)
        got = self._or_none(f"getting deployed model {did}", lambda: self.sdk.lora.get(did, account_id=acct))
        return None if got is None else DeployedModelRecord.from_wire(got)

    def list_deployed_models(self) -> list[DeployedModelRecord]:
        with self.errors("listing deployed models"):
            return [
                DeployedModelRecord.from_wire(d) for d in self.sdk.lora.list(account_id=self.account_id, page_size=200)
            ]

    def unload_lora(self, deployed_model_id: str) -> bool:
        """Unload; False when it was already gone (404)."""
        acct, did = split_name(deployed_model_id, "deployedModels", self.account_id)
        return (
            self._or_none(f"unloading deployed model {did}", lambda: self.sdk.lora.unload(did, account_id=acct) or True)
            is not None
        )


def make_client(settings: Settings, *, max_retries: int | None = None) -> FireworksClient:
    """An SDK client with explicit base URL, account and retries (from ``settings.fireworks``)."""
    api_key = require_key(settings)
    fw = settings.fireworks
    account = fw.account_id or resolve_account_id(fw.base_url, api_key)
    import fireworks

    sdk = fireworks.Fireworks(
        api_key=api_key,
        account_id=account,
        base_url=fw.base_url,
        max_retries=fw.max_retries if max_retries is None else max_retries,
        timeout=fw.timeout,
    )
    return FireworksClient(sdk=sdk, account_id=account, base_url=fw.base_url)
