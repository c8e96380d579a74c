"""The policy client (svgrft.clients.policy) against hostile OpenAI-compatible endpoints: bodies that are not
completions, garbage usage counts, and a server that trickles its answer (together with the judge client)."""

from __future__ import annotations

import pytest

from tests.fakes.canned import completion

REQS = ["a red apple", "a wooden table", "a green leaf"]


def test_policy_client_survives_the_same_bodies(canned):
    import asyncio

    from svgrft.clients.policy import PolicyClient
    from svgrft.errors import SvgrftError

    async def gen():
        p = PolicyClient(
            model="m",
            base_url=canned.url,
            api_key="fw-test-canned-0123456789",
            max_retries=0,
            backoff_base=0.01,
            timeout=10,
        )
        try:
            return await p.generate([{"role": "user", "content": "draw"}])
        finally:
            await p.aclose()

    canned.answer(completion("<svg/>", {"prompt_tokens": "x", "completion_tokens": -1}))
    g = asyncio.run(gen())
    assert g[0].text == "<svg/>" and g[0].usage == {"prompt_tokens": 0, "completion_tokens": 0}
    canned.answer({"choices": "nope"})
    with pytest.raises(SvgrftError) as e:  # typed and retried (was a list of junk generations)
        asyncio.run(gen())
    assert getattr(e.value, "kind", None) == "malformed"


def test_a_trickling_judge_or_policy_times_out_instead_of_hanging(trickle):
    import asyncio

    from svgrft.clients.judge import JudgeClient
    from svgrft.clients.policy import PolicyClient
    from svgrft.errors import SvgrftError

    async def run():
        j = JudgeClient(
            model="m",
            api_key="sk-test-trickle-0123456789",
            base_url=trickle.url,
            timeout=0.5,
            max_retries=1,
            backoff_base=0.01,
        )
        p = PolicyClient(
            model="m",
            base_url=trickle.url,
            api_key="fw-test-trickle-0123456789",
            timeout=0.5,
            max_retries=0,
            backoff_base=0.01,
        )
        try:
            out = await j.judge(b"\x89PNG\r\n\x1a\n", REQS, "")
            try:
                await p.generate([{"role": "user", "content": "draw"}])
                policy_error = None
            except SvgrftError as e:
                policy_error = e
            return out, policy_error
        finally:
            await j.aclose()
            await p.aclose()

    try:  # a hang guard, not a timing assertion: without a total deadline this never returns
        out, policy_error = asyncio.run(asyncio.wait_for(run(), 60))
    except asyncio.TimeoutError:
        pytest.fail("the clients waited for a trickling server forever")
    assert not out.ok and out.error_kind == "timeout" and out.calls == 2, out.reason
    assert policy_error is not None and getattr(policy_error, "kind", None) == "timeout"
    assert trickle.hits == 3
