"""Fireworks control plane through the official ``fireworks-ai`` SDK.

Always constructed with an explicit ``base_url`` and ``account_id`` (so a fake on loopback
can stand in), and every SDK exception is turned into an svgrft error with a hint.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator

from svgrft.errors import (ApiError, AuthError, ConfigError, ConflictError, NetworkError, NotFoundError)

KEY_HINT = "check FIREWORKS_API_KEY (in the environment or .env); `svgrft doctor` shows which key is used"


def require_key(settings: Any) -> str:
    key = settings.secret("FIREWORKS_API_KEY")
    if not key:
        raise ConfigError("FIREWORKS_API_KEY is not set",
                          hint="export FIREWORKS_API_KEY=... or put it in .env "
                               "(create a key at https://app.fireworks.ai/settings/users/api-keys)")
    return key


@contextlib.contextmanager
def api_errors(what: str, base_url: str = "") -> Iterator[None]:
    """Translate Fireworks SDK exceptions raised while doing ``what`` into svgrft errors."""
    import json

    import fireworks

    try:
        yield
    except (json.JSONDecodeError, fireworks.APIResponseValidationError) as e:
        raise ApiError(f"Fireworks sent a malformed response{_at(base_url)} while {what}",
                       hint="run the same command again; if it persists, check FIREWORKS_BASE_URL", status=502) from e
    except fireworks.AuthenticationError as e:
        raise AuthError(f"Fireworks rejected the API key (401) while {what}", hint=KEY_HINT, status=401) from e
    except fireworks.PermissionDeniedError as e:
        raise AuthError(f"permission denied (403) while {what}: {_msg(e)}",
                        hint="the key may belong to another account: check FIREWORKS_ACCOUNT_ID and FIREWORKS_API_KEY",
                        status=403) from e
    except fireworks.NotFoundError as e:
        raise NotFoundError(f"not found (404) while {what}: {_msg(e)}",
                            hint="check the id/name and the account (FIREWORKS_ACCOUNT_ID)", status=404) from e
    except fireworks.ConflictError as e:
        raise ConflictError(f"already exists (409) while {what}: {_msg(e)}",
                            hint="choose another id, or reuse the existing resource", status=409) from e
    except fireworks.RateLimitError as e:
        raise ApiError(f"rate limited by Fireworks (429) while {what}, after retries",
                       hint="wait a minute and run the same command again; finished steps are reused",
                       status=429) from e
    except fireworks.BadRequestError as e:
        raise ApiError(f"Fireworks refused the request (400) while {what}: {_msg(e)}",
                       hint="check the values named in the message", status=400) from e
    except fireworks.InternalServerError as e:
        raise ApiError(f"Fireworks server error ({e.status_code}) while {what}, after retries",
                       hint="the service may be degraded; run the same command again later", status=e.status_code) from e
    except fireworks.APITimeoutError as e:
        raise NetworkError(f"timed out talking to Fireworks{_at(base_url)} while {what}",
                           hint="check your network or FIREWORKS_BASE_URL; run the command again") from e
    except fireworks.APIConnectionError as e:
        raise NetworkError(f"cannot reach Fireworks{_at(base_url)} while {what}",
                           hint="check your network connection or FIREWORKS_BASE_URL") from e
    except fireworks.APIStatusError as e:
        raise ApiError(f"Fireworks answered {e.status_code} while {what}: {_msg(e)}",
                       hint="run the same command again; if it persists, check status.fireworks.ai",
                       status=e.status_code) from e


def _at(base_url: str) -> str:
    return f" at {base_url}" if base_url else ""


def _msg(e: Any) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return str(getattr(e, "message", e))[:300]


def resolve_account_id(base_url: str, api_key: str, timeout: float = 15.0) -> str:
    """Account id from ``GET {base}/verifyApiKey`` (header ``x-fireworks-account-id``), as eval-protocol does."""
    import httpx

    try:
        r = httpx.get(f"{base_url}/verifyApiKey", headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout)
    except httpx.HTTPError as e:
        raise NetworkError(f"cannot reach Fireworks at {base_url} to look up the account ({type(e).__name__})",
                           hint="check your network or FIREWORKS_BASE_URL, or set FIREWORKS_ACCOUNT_ID") from None
    if r.status_code in (401, 403):
        raise AuthError(f"Fireworks rejected the API key ({r.status_code}) while looking up the account",
                        hint=KEY_HINT, status=r.status_code)
    account = r.headers.get("x-fireworks-account-id")
    if r.status_code != 200 or not account:
        raise ApiError(f"could not resolve the Fireworks account (HTTP {r.status_code})",
                       hint="set FIREWORKS_ACCOUNT_ID explicitly", status=r.status_code)
    return account


# -- models, deployments, LoRA (using a trained model) --------------------------------------
def wire(obj: Any) -> dict:
    """An SDK object as its wire dict (camelCase, unset fields omitted); dicts pass through."""
    if isinstance(obj, dict):
        return obj
    to_dict = getattr(obj, "to_dict", None)
    return to_dict(mode="json") if callable(to_dict) else {}


def split_name(name: str, collection: str, account: str) -> tuple[str, str]:
    """``accounts/a/<collection>/x`` → (a, x); a bare id → (account, id)."""
    parts = name.strip().split("/")
    if len(parts) == 4 and parts[0] == "accounts" and parts[2] == collection:
        return parts[1], parts[3]
    return account, name.strip()


class DeploymentCalls:
    """Thin SDK calls behind ``svgrft deploy`` (mixed into :class:`FireworksClient`); wire dicts out."""

    sdk: Any
    account_id: str

    def get_model(self, model: str) -> dict:
        acct, mid = split_name(model, "models", self.account_id)
        with self.errors(f"getting model {acct}/{mid}"):
            return wire(self.sdk.models.get(mid, account_id=acct))

    def create_deployment(self, *, deployment_id: str, base_model: str, validate_only: bool = False,
                          **fields: Any) -> dict:
        """``deployments.create``; ``fields`` are the SDK's snake_case keyword arguments."""
        kw = {k: v for k, v in fields.items() if v is not None}
        if validate_only:
            kw["validate_only"] = True
        with self.errors(f"creating deployment {deployment_id}"):
            return wire(self.sdk.deployments.create(account_id=self.account_id, deployment_id=deployment_id,
                                                    base_model=base_model, **kw))

    def get_deployment(self, deployment_id: str) -> dict:
        acct, did = split_name(deployment_id, "deployments", self.account_id)
        with self.errors(f"getting deployment {did}"):
            return wire(self.sdk.deployments.get(did, account_id=acct))

    def list_deployments(self, *, show_deleted: bool = False) -> list[dict]:
        kw: dict[str, Any] = {"account_id": self.account_id, "page_size": 200}
        if show_deleted:
            kw["show_deleted"] = True
        with self.errors("listing deployments"):
            return [wire(d) for d in self.sdk.deployments.list(**kw)]

    def delete_deployment(self, deployment_id: str, *, ignore_checks: bool = False) -> bool:
        """Delete; False when it was already gone (404)."""
        import fireworks

        acct, did = split_name(deployment_id, "deployments", self.account_id)
        kw: dict[str, Any] = {"account_id": acct}
        if ignore_checks:
            kw["ignore_checks"] = True
        with self.errors(f"deleting deployment {did}"):
            try:
                self.sdk.deployments.delete(did, **kw)
            except fireworks.NotFoundError:
                return False
        return True

    def load_lora(self, *, model: str, deployment: str) -> dict:
        with self.errors(f"loading {model} onto {deployment}"):
            return wire(self.sdk.lora.load(account_id=self.account_id, model=model, deployment=deployment))

    def get_deployed_model(self, deployed_model_id: str) -> dict:
        acct, did = split_name(deployed_model_id, "deployedModels", self.account_id)
        with self.errors(f"getting deployed model {did}"):
            return wire(self.sdk.lora.get(did, account_id=acct))

    def list_deployed_models(self) -> list[dict]:
        with self.errors("listing deployed models"):
            return [wire(d) for d in self.sdk.lora.list(account_id=self.account_id, page_size=200)]

    def download_dataset(self, dataset: str, *, max_bytes: int = 200 * 1024 * 1024, timeout: float = 60.0) -> bytes:
        """The uploaded file(s) of a dataset, through ``datasets.get_download_endpoint`` + the signed URLs."""
        from svgrft.clients.download import fetch_signed

        acct, did = split_name(dataset, "datasets", self.account_id)
        with self.errors(f"getting the download link of dataset {did}"):
            resp = wire(self.sdk.datasets.get_download_endpoint(did, account_id=acct))
        urls = resp.get("filenameToSignedUrls") or {}
        if not isinstance(urls, dict) or not urls:
            raise ApiError(f"dataset {did} has no downloadable file",
                           hint="upload it again with `svgrft dataset upload`")
        chunks: list[bytes] = []
        for _name, url in sorted(urls.items()):  # one size budget across the files
            chunks.append(fetch_signed(str(url), max_bytes=max_bytes - sum(map(len, chunks)), timeout=timeout))
        return b"".join(chunks)

    def unload_lora(self, deployed_model_id: str) -> bool:
        """Unload; False when it was already gone (404)."""
        import fireworks

        acct, did = split_name(deployed_model_id, "deployedModels", self.account_id)
        with self.errors(f"unloading deployed model {did}"):
            try:
                self.sdk.lora.unload(did, account_id=acct)
            except fireworks.NotFoundError:
                return False
        return True



@dataclass
class FireworksClient(DeploymentCalls):
    sdk: Any            # fireworks.Fireworks
    account_id: str
    base_url: str

    def errors(self, what: str):
        return api_errors(what, self.base_url)

    def name(self, collection: str, resource_id: str) -> str:
        if resource_id.startswith("accounts/"):
            return resource_id
        return f"accounts/{self.account_id}/{collection}/{resource_id}"

    # -- secrets ---------------------------------------------------------------------------
    def upsert_secret(self, key_name: str, value: str) -> tuple[str, str]:
        """Create or update secret ``key_name``; returns (resource name, "created"|"updated")."""
        import fireworks

        secret_id = secret_id_for(key_name)
        sdk = self.sdk
        with self.errors(f"reading secret {secret_id}"):
            try:
                sdk.secrets.get(secret_id, account_id=self.account_id)
                exists = True
            except fireworks.NotFoundError:
                exists = False
        if not exists:
            try:
                with self.errors(f"creating secret {secret_id}"):
                    s = sdk.secrets.create(account_id=self.account_id, key_name=key_name, name=secret_id, value=value)
                return s.name or self.name("secrets", secret_id), "created"
            except ConflictError:
                pass  # created concurrently: fall through to update
        with self.errors(f"updating secret {secret_id}"):
            s = sdk.secrets.update(secret_id, account_id=self.account_id, key_name=key_name, value=value)
        return s.name or self.name("secrets", secret_id), "updated"


def secret_id_for(key_name: str) -> str:
    """``OPENAI_API_KEY`` → ``openai-api-key`` (eval-protocol's convention)."""
    return key_name.strip().lower().replace("_", "-")


def make_client(settings: Any, *, max_retries: int | None = None) -> FireworksClient:
    """An SDK client with explicit base URL, account and retries (from settings)."""
    api_key = require_key(settings)
    base_url = settings["fireworks.base_url"]
    account = settings["fireworks.account_id"] or resolve_account_id(base_url, api_key)
    import fireworks

    sdk = fireworks.Fireworks(
        api_key=api_key, account_id=account, base_url=base_url,
        max_retries=settings["fireworks.max_retries"] if max_retries is None else max_retries,
        timeout=settings["fireworks.timeout"],
    )
    return FireworksClient(sdk=sdk, account_id=account, base_url=base_url)

