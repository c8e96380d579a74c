"""`svgrft render`: files, folders and JSONL replies → PNGs, summary on stdout, progress/warnings on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from svgrft.core.pngutil import decode_png, pixel
from tests.conftest import CORPUS

pytestmark = pytest.mark.browser

NS = 'xmlns="http://www.w3.org/2000/svg"'
BLUE = f'<svg {NS} width="40" height="30"><rect width="40" height="30" fill="#0000ff"/></svg>'
GREEN = f'<svg {NS} viewBox="0 0 20 10"><rect width="20" height="10" fill="#00ff00"/></svg>'


def _replies(path: Path) -> Path:
    lines = [
        json.dumps({"reply": f"Here you go:\n```svg\n{BLUE}\n```"}),
        json.dumps({"text": "I cannot draw that."}),
        "{not json",
        json.dumps({"messages": [{"role": "user", "content": "draw"},
                                 {"role": "assistant", "content": [{"type": "text", "text": GREEN}]}]}),
        json.dumps({"something": "else"}),
        "",
        json.dumps([1, 2]),
        json.dumps({"content": f"<think>{BLUE}</think>" + '<svg width="5"><rect'}),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_render_files_folder_and_jsonl(cli, tmp_path):
    folder = tmp_path / "svgs"
    folder.mkdir()
    for name in ("gen_000.svg", "hand_cow_plowing.svg"):
        (folder / name).write_text((CORPUS / name).read_text())
    (folder / "notes.txt").write_text("ignored: folders contribute only .svg files")
    evil = tmp_path / "evil.svg"
    evil.write_text(f"<svg {NS}>" + "<g>" * 200 + "</g>" * 200 + "</svg>")
    replies = _replies(tmp_path / "replies.jsonl")
    out = tmp_path / "out"

    r = cli("render", folder, evil, replies, "-o", out, "--json", "-j", "2")
    assert r.exit_code == 1, r  # a partial failure exits 1, after the results (issue #13)
    assert "Error: 6 of 10 inputs did not render; 4 PNGs are in" in r.stderr
    s = r.json()
    assert s["rendered"] == 4 and s["items"] == 10
    assert s["failed"] == {"bad_line": 3, "invalid": 1, "no_svg": 2}
    assert s["renders_per_second"] > 0
    by_name = {x["name"]: x for x in s["results"]}
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["gen_000.png", "hand_cow_plowing.png", "replies-00001.png", "replies-00004.png"])
    assert by_name["replies-00001"]["method"] == "fenced_svg"
    assert by_name["replies-00002"]["error_kind"] == "no_svg"
    assert by_name["replies-00008"]["reason"].startswith("SVG is truncated")
    assert by_name["evil"]["error_kind"] == "invalid" and by_name["evil"]["png"] is None
    assert "depth" in by_name["evil"]["reason"]
    assert by_name["gen_000"]["method"] == "bare"
    assert decode_png((out / "gen_000.png").read_bytes())[:2] == (700, 500)
    assert pixel((out / "replies-00001.png").read_bytes(), 20, 15) == (0, 0, 255)
    green = (out / "replies-00004.png").read_bytes()
    assert decode_png(green)[:2] == (512, 256) and pixel(green, 500, 250) == (0, 255, 0)
    # bad lines are reported on stderr with their line numbers, not hidden
    assert "replies.jsonl:3" in r.stderr and "replies.jsonl:5" in r.stderr and "replies.jsonl:7" in r.stderr
    assert r.stdout.count("\n") > 10 and r.stderr.count("Error") == 1

    # re-run: same files, same bytes; an item that no longer renders loses its stale PNG
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (folder / "hand_cow_plowing.svg").write_text("no svg here any more")
    r2 = cli("render", folder, evil, replies, "-o", out, "--json")
    assert r2.exit_code == 1, r2
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(after) == set(before) - {"hand_cow_plowing.png"}
    assert all(after[k] == before[k] for k in after)


def test_render_size_and_table_output(cli, tmp_path):
    f = tmp_path / "blue.svg"
    f.write_text(BLUE)
    junk = tmp_path / "junk.svg"
    junk.write_text("<svg width='10'><rect")
    xxe = tmp_path / "xxe.svg"  # the DOCTYPE before <svg> is dropped (as in a reply): &x; stays inert text
    xxe.write_text(f'<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg {NS} width="50" height="20">'
                   '<text y="15">&x;</text></svg>')
    out = tmp_path / "o"
    r = cli("render", f, junk, xxe, "-o", out, "--size", "64")
    assert r.exit_code == 1 and "Error: 1 of 3 inputs did not render" in r.stderr, r
    assert decode_png((out / "blue.png").read_bytes())[:2] == (64, 48)
    assert "renders per second" in r.stdout
    lines = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in r.stdout.splitlines()
             if line.count("│") >= 3}
    assert lines["rendered"] == "2"
    assert lines["failed: no_svg"] == "1"
    assert "junk.svg: no_svg: SVG is truncated" in r.stderr
    assert decode_png((out / "xxe.png").read_bytes())[:2] == (64, 26)


def test_render_bad_inputs(cli, tmp_path, monkeypatch):
    r = cli("render", tmp_path / "missing.svg", "-o", tmp_path / "o")
    assert r.exit_code == 2 and "Error:" in r.stderr and "missing.svg" in r.stderr
    odd = tmp_path / "x.png"
    odd.write_bytes(b"\x89PNG")
    r = cli("render", odd, "-o", tmp_path / "o")
    assert r.exit_code == 2 and "unsupported input type" in r.stderr
    nothing = tmp_path / "none.jsonl"
    nothing.write_text(json.dumps({"reply": "no picture"}) + "\n")
    r = cli("render", nothing, "-o", tmp_path / "o", "--json")
    assert r.exit_code == 1 and r.json()["failed"] == {"no_svg": 1} and "none of the 1 inputs rendered" in r.stderr
    f = tmp_path / "b.svg"
    f.write_text(BLUE)
    monkeypatch.setenv("SVGRFT_CHROMIUM", str(tmp_path / "no-chromium"))
    r = cli("render", f, "-o", tmp_path / "o")
    assert r.exit_code == 1 and "apt-get install" in r.stderr and "Traceback" not in r.stderr
