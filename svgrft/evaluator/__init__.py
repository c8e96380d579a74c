"""The Eval Protocol evaluator that Fireworks runs for every rollout of an RFT job.

This package is copied (with the parts of svgrft it imports) into the evaluator tarball by
``svgrft evaluator build`` (:mod:`svgrft.workflow.evaluator_bundle`). Keep it light: no CLI, no workflow,
no SDK imports at module level — :mod:`svgrft.evaluator.runtime` imports eval-protocol lazily.

Files:
- ``test_svgrft_eval.py`` — the ``@evaluation_test`` entry point (staged at the tarball root);
- ``runtime.py`` — config loading, rollout processor factory, row scoring (render → judge → score),
  and the record of every scored rollout (:mod:`svgrft.core.records`, sent by
  :mod:`svgrft.clients.gatewaylog` in the background);
- ``requirements.txt`` (pinned) and ``Dockerfile`` (Chromium for rendering) — staged as they are.
"""

ENTRY_FILE = "test_svgrft_eval.py"
ENTRY_FUNC = "test_svgrft_eval"
ENTRY_POINT = f"{ENTRY_FILE}::{ENTRY_FUNC}"
CONFIG_FILE = "svgrft_evaluator_config.json"
# the list of staged files and their content hash (= the evaluator's commitHash; the key of its records)
MANIFEST_FILE = "svgrft_manifest.json"
SAMPLE_DATASET = "sample_dataset.jsonl"
CONFIG_SCHEMA = 1
# the env var that carries the rollout server's shared secret (pushed as a Fireworks secret in remote mode)
TOKEN_ENV = "SVGRFT_SERVE_TOKEN"
