"""svgrft.core.dataset: SVGBench prompt template, row ids, split, validation, content hash."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from svgrft.core import dataset as ds
from svgrft.core import svgbench as sb
from svgrft.errors import DatasetError
from tests.conftest import REPO, SEED

# 9 of the 50 lines of SVGBench's quickstart file (rows 0-7 and row 43, the non-ASCII '°' one)
QUICKSTART = SEED / "quickstart_svgbench_dataset.jsonl"
QUESTIONS = REPO / "datasets" / "svgbench_questions.json"
# SHA-256 of SVGBench's svgbench_questions.json: the bundled copy is that file, unmodified
QUESTIONS_SHA256 = "79a8e2c9bede076ae947d8b3e5fabf35d0194ee44de22506d1eb06ef821f7994"


def _seed_rows():
    return sb.build_rows(sb.load_questions(QUESTIONS))


def _write_lines(path: Path, lines: list) -> Path:
    with open(path, "wb") as f:
        for line in lines:
            f.write((line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n")
    return path


def _good_row(row_id="r1", reqs=("a red circle", "a blue square")) -> dict:
    prompt = sb.format_prompt("Write `svg` code for shapes.", list(reqs))
    return {
        "messages": [{"role": "user", "content": prompt}],
        "input_metadata": {
            "row_id": row_id,
            "dataset_info": {
                "original_prompt": "Write `svg` code for shapes.",
                "requirements": list(reqs),
                "total_requirements": len(reqs),
                "formatted_prompt": prompt,
            },
        },
    }


# --- build: equal to the real quickstart file ---------------------------------------------------


def test_quickstart_prompts_equal_the_quickstart_file():
    rows = _seed_rows()
    assert len(rows) == 105
    by_id = {r.row_id: r for r in rows}
    lines = QUICKSTART.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 9 and any("°" in line for line in lines)
    for line in lines:
        theirs = json.loads(line)
        rid = theirs["input_metadata"]["row_id"]
        ours = by_id[rid].to_json()  # same id maps to the same prompt
        assert ours["messages"] == theirs["messages"], rid
        assert ours["input_metadata"]["dataset_info"] == theirs["input_metadata"]["dataset_info"], rid
        assert by_id[rid].to_line() == line, rid  # byte for byte, including the non-ASCII '°' row


def test_prompt_template_structure():
    p = sb.format_prompt("Draw X.", ["first", "second"])
    assert p.startswith("Draw X. Wrap the SVG code in an SVG code block")
    assert "```svg\n<svg" in p and p.endswith("Requirements:\n1. first\n2. second")


def test_row_ids_follow_question_index_unless_given():
    rows = sb.build_rows(
        [
            {"prompt": "a", "requirements": ["x"]},
            {"prompt": "b", "requirements": ["y"], "id": "custom-7"},
            {"prompt": "c", "requirements": ["z"], "id": 12},
        ]
    )
    assert [r.row_id for r in rows] == ["row_0", "custom-7", "row_12"]


@pytest.mark.parametrize(
    "questions, needle",
    [
        ([{"prompt": "a"}], "requirements"),
        ([{"prompt": "", "requirements": ["x"]}], "prompt"),
        ([{"prompt": "a", "requirements": ["x", 3]}], "requirement 2"),
        ([{"prompt": "a", "requirements": ["x"] * (ds.MAX_REQUIREMENTS + 1)}], "limit"),
        (["not an object"], "expected an object"),
        ([{"prompt": "a", "requirements": ["x"], "id": "a/b"}], "not a valid row id"),
        (
            [{"prompt": "a", "requirements": ["x"], "id": "d"}, {"prompt": "b", "requirements": ["y"], "id": "d"}],
            "duplicate",
        ),
        ({"prompt": "a"}, "JSON list"),
    ],
)
def test_build_rejects_bad_questions(questions, needle):
    with pytest.raises(DatasetError) as e:
        sb.build_rows(questions)
    assert needle in e.value.message


def test_load_questions_errors(tmp_path):
    with pytest.raises(DatasetError, match="cannot read"):
        sb.load_questions(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[{", encoding="utf-8")
    with pytest.raises(DatasetError, match="not valid JSON"):
        sb.load_questions(bad)
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"questions": [{"prompt": "p", "requirements": ["r"]}]}), encoding="utf-8")
    assert sb.load_questions(wrapped) == [{"prompt": "p", "requirements": ["r"]}]


# --- the committed files are exactly what the command produces ----------------------------------


def test_bundled_files_are_generated_and_up_to_date(tmp_path):
    rows = sb.build_rows(sb.load_questions(QUESTIONS))
    train, ev = sb.split_rows(rows, 0.2, seed=0)
    for name, rs in (("svgbench.jsonl", rows), ("svgbench_train.jsonl", train), ("svgbench_eval.jsonl", ev)):
        fresh = ds.write_rows(rs, tmp_path / name).read_bytes()
        assert (REPO / "datasets" / name).read_bytes() == fresh, name
    assert hashlib.sha256(QUESTIONS.read_bytes()).hexdigest() == QUESTIONS_SHA256
    assert ds.BUNDLED_DATASET.is_file() and ds.BUNDLED_DATASET.name == "svgbench.jsonl"
    for path in (ds.BUNDLED_DATASET, ds.BUNDLED_QUESTIONS, ds.BUNDLED_TRAIN, ds.BUNDLED_EVAL):
        assert path.parent == REPO / "datasets", path  # a checkout reads its own datasets/


def test_the_bundled_data_has_one_copy_and_the_package_carries_it():
    """datasets/*.jsonl and svgrft/data/*.jsonl were two committed copies of the same bytes. datasets/ is the
    only one; pyproject.toml installs it as the package data svgrft/data/ (what an installed svgrft reads)."""
    import tomllib

    assert not (REPO / "svgrft" / "data").exists()
    setup = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert setup["package-dir"] == {"svgrft.data": "datasets"}
    patterns = setup["package-data"]["svgrft.data"]
    bundled = [ds.BUNDLED_DATASET, ds.BUNDLED_QUESTIONS, ds.BUNDLED_TRAIN, ds.BUNDLED_EVAL]
    assert all(any(p.match(pat) for pat in patterns) for p in bundled), patterns
    # the package list is explicit (a mapped package cannot be found): every package of the tree is in it
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "svgrft").rglob("__init__.py")}
    assert set(setup["packages"]) == on_disk | {"svgrft.data"}
    assert ds._PKG_DATA == REPO / "svgrft" / "data"  # where the installed package finds them


def test_resolve_path_falls_back_to_bundled_copy(tmp_path):
    # cwd is a temp dir without datasets/: the relative default path still finds the bundled file
    assert not Path("datasets/svgbench_train.jsonl").exists()
    assert ds.resolve_path("datasets/svgbench_train.jsonl") == ds.BUNDLED_TRAIN
    assert ds.resolve_path("elsewhere/x.jsonl") == Path("elsewhere/x.jsonl")
    local = tmp_path / "datasets"
    local.mkdir()
    (local / "svgbench_train.jsonl").write_text("{}\n")
    assert ds.resolve_path("datasets/svgbench_train.jsonl") == Path("datasets/svgbench_train.jsonl")


# --- split ---------------------------------------------------------------------------------------


def test_split_is_deterministic_disjoint_and_complete():
    rows = _seed_rows()
    t1, e1 = sb.split_rows(rows, 0.2, seed=7)
    t2, e2 = sb.split_rows(rows, 0.2, seed=7)
    assert [r.row_id for r in e1] == [r.row_id for r in e2] and [r.row_id for r in t1] == [r.row_id for r in t2]
    tr_ids, ev_ids = {r.row_id for r in t1}, {r.row_id for r in e1}
    assert not tr_ids & ev_ids
    assert tr_ids | ev_ids == {r.row_id for r in rows}
    assert abs(len(e1) - 21) <= 1
    _, e3 = sb.split_rows(rows, 0.2, seed=8)
    assert {r.row_id for r in e3} != ev_ids
    # order within each side follows the source
    order = {r.row_id: i for i, r in enumerate(rows)}
    assert [order[r.row_id] for r in e1] == sorted(order[r.row_id] for r in e1)


def test_split_keeps_same_prompt_on_one_side():
    rows = _seed_rows()
    dup = {r.row_id for r in rows if r.original_prompt == rows[98].original_prompt}
    assert dup == {"row_98", "row_99"}
    for seed in range(30):
        _, ev = sb.split_rows(rows, 0.3, seed=seed)
        ids = {r.row_id for r in ev}
        assert dup <= ids or not (dup & ids), seed


def test_split_rejects_bad_fraction():
    with pytest.raises(DatasetError):
        sb.split_rows(_seed_rows(), 1.0)


# --- validation ----------------------------------------------------------------------------------


def test_validate_bundled_and_quickstart_files():
    r = ds.validate_file(ds.BUNDLED_DATASET)
    assert r.ok and r.rows == 105 and len(set(r.row_ids)) == 105 and r.errors == []
    q = ds.validate_file(QUICKSTART)
    assert q.ok and q.rows == 9 and q.row_ids[:3] == ["row_0", "row_1", "row_2"]


def test_validate_reports_every_problem_with_its_line(tmp_path):
    good = _good_row("r1")
    last_assistant = _good_row("r4")
    last_assistant["messages"].append({"role": "assistant", "content": "<svg/>"})
    no_reqs = _good_row("r5")
    no_reqs["input_metadata"]["dataset_info"]["requirements"] = []
    no_reqs["input_metadata"]["dataset_info"]["total_requirements"] = 0
    mismatch = _good_row("r6")
    mismatch["input_metadata"]["dataset_info"]["total_requirements"] = 5
    no_id = _good_row("r7")
    del no_id["input_metadata"]["row_id"]
    bad_role = _good_row("r8")
    bad_role["messages"].insert(0, {"role": "wizard", "content": "hi"})
    slash_id = _good_row("../etc/passwd")
    bool_total = _good_row("r10")
    bool_total["input_metadata"]["dataset_info"]["total_requirements"] = True
    lines = [
        json.dumps(good),  # 1 ok
        "{not json",  # 2
        "[1, 2]",  # 3
        json.dumps(last_assistant),  # 4
        json.dumps(no_reqs),  # 5
        json.dumps(mismatch),  # 6
        json.dumps(no_id),  # 7
        json.dumps(bad_role),  # 8
        json.dumps(slash_id),  # 9
        json.dumps(bool_total),  # 10
        json.dumps(good),  # 11 duplicate of line 1
        "",  # 12 blank
        b"\xff\xfe not utf-8",  # 13
        json.dumps({"messages": [{"role": "user", "content": "x"}]}),  # 14 no input_metadata
        json.dumps(_good_row("r15")),  # 15 ok
    ]
    path = _write_lines(tmp_path / "bad.jsonl", lines)
    r = ds.validate_file(path)
    assert not r.ok
    by_line: dict[int, list[str]] = {}
    for ln, msg in r.errors:
        by_line.setdefault(ln, []).append(msg)
    assert sorted(by_line) == list(range(2, 15))
    assert "invalid JSON" in by_line[2][0]
    assert "JSON object" in by_line[3][0]
    assert any("last message must be from the user" in m for m in by_line[4])
    assert any("empty" in m for m in by_line[5])
    assert any("total_requirements is 5 but there are 2" in m for m in by_line[6])
    assert any("row_id" in m for m in by_line[7])
    assert any("unknown role 'wizard'" in m for m in by_line[8])
    assert any("row_id" in m and "invalid" in m for m in by_line[9])
    assert any("must be an integer" in m for m in by_line[10])
    assert any("duplicate row_id 'r1' (first on line 1)" in m for m in by_line[11])
    assert "empty line" in by_line[12][0]
    assert "UTF-8" in by_line[13][0]
    assert any("input_metadata" in m for m in by_line[14])
    assert r.rows == 2 and r.row_ids == ["r1", "r15"]
    assert r.error_count == len(r.errors)
    assert all(s.startswith(f"{path}:") for s in r.format_errors())


def test_validate_size_limits(tmp_path, monkeypatch):
    big = _good_row("big")
    big["messages"][0]["content"] += "x" * (ds.MAX_LINE_BYTES + 10)
    path = _write_lines(
        tmp_path / "long.jsonl", [json.dumps(_good_row("a")), json.dumps(big), json.dumps(_good_row("b"))]
    )
    r = ds.validate_file(path)
    assert [ln for ln, _ in r.errors] == [2] and "longer than" in r.errors[0][1]
    assert r.rows == 2 and r.row_ids == ["a", "b"]  # the line after the long one is read correctly

    many = _good_row("many", reqs=[f"req {i}" for i in range(ds.MAX_REQUIREMENTS + 1)])
    r2 = ds.validate_file(_write_lines(tmp_path / "many.jsonl", [json.dumps(many)]))
    assert not r2.ok and "limit" in r2.errors[0][1]

    monkeypatch.setattr(ds, "MAX_FILE_BYTES", 100)
    r3 = ds.validate_file(ds.BUNDLED_DATASET)
    assert not r3.ok and r3.errors[0][0] == 0 and "150 MB" in r3.errors[0][1]


def test_validate_missing_and_empty_files(tmp_path):
    r = ds.validate_file(tmp_path / "nope.jsonl")
    assert not r.ok and "cannot read" in r.errors[0][1]
    (tmp_path / "empty.jsonl").write_bytes(b"")
    r = ds.validate_file(tmp_path / "empty.jsonl")
    assert not r.ok and "empty" in r.errors[0][1]


def test_validate_hostile_nesting_does_not_crash(tmp_path):
    path = _write_lines(tmp_path / "deep.jsonl", ["[" * 100000 + "]" * 100000])
    r = ds.validate_file(path)
    assert not r.ok and r.errors[0][0] == 1


def test_load_dataset_raises_on_first_problem(tmp_path):
    rows = ds.load_dataset(ds.BUNDLED_DATASET)
    assert len(rows) == 105 and rows[0].row_id == "row_0" and rows[0].requirements
    assert rows[0].to_json() == json.loads(ds.BUNDLED_DATASET.read_text(encoding="utf-8").splitlines()[0])
    path = _write_lines(tmp_path / "x.jsonl", [json.dumps(_good_row("a")), "nope", "[]"])
    with pytest.raises(DatasetError) as e:
        ds.load_dataset(path)
    assert e.value.message.startswith(f"{path}:2: invalid JSON")
    assert "svgrft dataset validate" in e.value.hint


def test_content_hash_ignores_formatting_but_not_content(tmp_path):
    rows = [_good_row("a"), _good_row("b")]
    a = _write_lines(tmp_path / "a.jsonl", [json.dumps(r) for r in rows])
    b = tmp_path / "b.jsonl"
    b.write_bytes(
        (
            "\r\n".join(json.dumps(r, indent=None, sort_keys=True, separators=(", ", " : ")) for r in rows) + "\r\n\r\n"
        ).encode()
    )
    assert ds.content_hash(a) == ds.content_hash(b)
    assert len(ds.content_hash(a)) == 64
    rows[1]["input_metadata"]["dataset_info"]["requirements"][0] = "a green circle"
    c = _write_lines(tmp_path / "c.jsonl", [json.dumps(r) for r in rows])
    assert ds.content_hash(c) != ds.content_hash(a)


# --- our validator agrees with eval-protocol's EvaluationRow -------------------------------------

_EP_SCRIPT = r"""
import json, os, sys
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
from eval_protocol.models import EvaluationRow
out = []
for line in sys.stdin.read().splitlines():
    try:
        EvaluationRow.model_validate(json.loads(line))
        out.append(True)
    except Exception:
        out.append(False)
print(json.dumps(out))
"""


def test_generated_rows_pass_eval_protocol_and_rejections_agree():
    """ONE run of eval-protocol's real EvaluationRow.model_validate (in a subprocess: importing it
    costs seconds and it rewrites env vars) over a sample of our rows plus broken rows."""
    lines = ds.BUNDLED_DATASET.read_text(encoding="utf-8").splitlines()
    sample = lines[:5] + lines[-5:] + [lines[43]]  # 43 holds non-ASCII text
    broken = [
        {"messages": "not a list", "input_metadata": {"row_id": "a", "dataset_info": {}}},
        {"messages": [{"content": "no role"}], "input_metadata": {"row_id": "b"}},
        {"messages": [{"role": "user", "content": 5}], "input_metadata": {"row_id": "c"}},
        {"messages": [{"role": "user", "content": "x"}], "input_metadata": {"row_id": 7}},
        {"messages": [{"role": "user", "content": "x"}], "input_metadata": "not an object"},
        {"messages": [{"role": "user", "content": "x"}], "input_metadata": {"row_id": "d", "dataset_info": [1]}},
    ]
    payload = "\n".join(sample + [json.dumps(b) for b in broken]) + "\n"
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", _EP_SCRIPT],
        input=payload,
        capture_output=True,
        text=True,
        env=env,
        cwd=str(REPO),
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    verdicts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(verdicts) == len(sample) + len(broken)
    ours = [not ds.check_row(json.loads(x))[0] for x in sample] + [not ds.check_row(b)[0] for b in broken]
    assert verdicts[: len(sample)] == [True] * len(sample)  # eval-protocol accepts our rows
    assert ours[: len(sample)] == [True] * len(sample)  # and so do we
    assert verdicts[len(sample) :] == [False] * len(broken)  # both reject the broken ones
    assert ours[len(sample) :] == [False] * len(broken)


# --- hostile dataset lines and questions files (folded from test_qa_core.py) ---


@pytest.mark.parametrize(
    "mutate,fragment",
    [
        (lambda line: '{"messages": ' + "1" * 5000 + "}", "more than 4300 digits"),  # was an uncaught ValueError
        (lambda line: line.replace('"row_id": "', '"x": NaN, "row_id": "', 1), "NaN is not a JSON value"),
        (lambda line: line.replace('"row_id": "', '"x": -Infinity, "row_id": "', 1), "-Infinity is not a JSON value"),
    ],
    ids=["giant_integer", "nan", "infinity"],
)
def test_hostile_dataset_lines_are_reported_not_raised(tmp_path, mutate, fragment):
    from svgrft.core.dataset import BUNDLED_DATASET, load_dataset, validate_file
    from svgrft.errors import DatasetError

    good = Path(BUNDLED_DATASET).read_text(encoding="utf-8").splitlines()[0]
    path = tmp_path / "rows.jsonl"
    path.write_text(good + "\n" + mutate(good.replace('"row_0"', '"row_x"')) + "\n", encoding="utf-8")
    report = validate_file(path)
    assert [ln for ln, _ in report.errors] == [2] and fragment in report.errors[0][1], report.errors
    with pytest.raises(DatasetError, match=fragment):
        load_dataset(path)


@pytest.mark.parametrize(
    "text,fragment",
    [('{"questions": ' + "7" * 5000 + "}", "4300 digits"), ("[" * 100_000, "nested too deeply")],
    ids=["giant_integer", "deep"],
)
def test_hostile_questions_file_is_a_dataset_error(tmp_path, text, fragment):
    from svgrft.core.svgbench import load_questions
    from svgrft.errors import DatasetError

    path = tmp_path / "q.json"
    path.write_text(text)
    with pytest.raises(DatasetError, match=fragment):
        load_questions(path)
