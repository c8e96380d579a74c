"""`svgrft render`: files, folders and JSONL replies → PNGs, summary on stdout, progress/warnings on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from svgrft.core.pngutil import decode_png, pixel

pytestmark = pytest.mark.browser

NS = 'xmlns="http://www.w3.org/2000/svg"'
BLUE = f'<svg {NS} width="40" height="30"><rect width="40" height="30" fill="#0000ff"/></svg>'
GREEN = f'<svg {NS} viewBox="0 0 20 10"><rect width="20" height="10" fill="#00ff00"/></svg>'
# a prologue and a comment before the root, as an editor writes a file
WIDE = (
    f'<?xml version="1.0" encoding="UTF-8"?>\n<!-- made by hand -->\n<svg {NS} width="700" height="500">'
    '<rect width="700" height="500" fill="#fc0"/><circle cx="350" cy="250" r="200" fill="#036"/></svg>'
)
COW = (
    f'<svg {NS} viewBox="0 0 100 80"><defs><linearGradient id="g"><stop offset="0" stop-color="#8b4"/>'
    '<stop offset="1" stop-color="#462"/></linearGradient></defs><rect width="100" height="80" fill="url(#g)"/>'
    '<ellipse cx="50" cy="45" rx="25" ry="15" fill="#fff" stroke="#000"/></svg>'
)


def _replies(path: Path) -> Path:
    lines = [
        json.dumps({"reply": f"Here you go:\n```svg\n{BLUE}\n```"}),
        json.dumps({"text": "I cannot draw that."}),
        "{not json",
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "draw"},
                    {"role": "assistant", "content": [{"type": "text", "text": GREEN}]},
                ]
            }
        ),
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
    for name, svg in (("gen_000.svg", WIDE), ("hand_cow_plowing.svg", COW)):
        (folder / name).write_text(svg)
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
    # the input tree below tmp_path, mirrored under --out, every input keeping its whole file name
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(
        ["svgs/gen_000.svg.png", "svgs/hand_cow_plowing.svg.png", "replies.jsonl-00001.png", "replies.jsonl-00004.png"]
    )
    assert by_name["replies.jsonl-00001"]["method"] == "fenced_svg"
    assert by_name["replies.jsonl-00001"]["png"] == str(out / "replies.jsonl-00001.png")
    assert by_name["replies.jsonl-00002"]["error_kind"] == "no_svg"
    assert by_name["replies.jsonl-00008"]["reason"].startswith("SVG is truncated")
    assert by_name["evil.svg"]["error_kind"] == "invalid" and by_name["evil.svg"]["png"] is None
    assert "depth" in by_name["evil.svg"]["reason"]
    assert by_name["svgs/gen_000.svg"]["method"] == "bare"
    assert decode_png((out / "svgs/gen_000.svg.png").read_bytes())[:2] == (700, 500)
    assert pixel((out / "replies.jsonl-00001.png").read_bytes(), 20, 15) == (0, 0, 255)
    green = (out / "replies.jsonl-00004.png").read_bytes()
    assert decode_png(green)[:2] == (512, 256) and pixel(green, 500, 250) == (0, 255, 0)
    # bad lines are reported on stderr with their line numbers, not hidden
    assert "replies.jsonl:3" in r.stderr and "replies.jsonl:5" in r.stderr and "replies.jsonl:7" in r.stderr
    assert r.stdout.count("\n") > 10 and r.stderr.count("Error") == 1

    # re-run: nothing is overwritten without --overwrite (and nothing is rendered)
    before = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*.png")}
    (folder / "hand_cow_plowing.svg").write_text("no svg here any more")
    r2 = cli("render", folder, evil, replies, "-o", out, "--json")
    assert r2.exit_code == 1 and r2.stdout == ""
    assert "already exist in" in r2.stderr and "hint: pass --overwrite" in r2.stderr
    assert {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*.png")} == before
    # with --overwrite: same files, same bytes; an item that no longer renders loses its stale PNG
    r3 = cli("render", folder, evil, replies, "-o", out, "--json", "--overwrite")
    assert r3.exit_code == 1, r3  # the no-longer-rendering item is a partial failure
    after = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert set(after) == set(before) - {"svgs/hand_cow_plowing.svg.png"}
    assert all(after[k] == before[k] for k in after)


def test_render_size_and_table_output(cli, tmp_path):
    f = tmp_path / "blue.svg"
    f.write_text(BLUE)
    junk = tmp_path / "junk.svg"
    junk.write_text("<svg width='10'><rect")
    xxe = tmp_path / "xxe.svg"  # the DOCTYPE before <svg> is dropped (as in a reply): &x; stays inert text
    xxe.write_text(
        f'<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg {NS} width="50" height="20">'
        '<text y="15">&x;</text></svg>'
    )
    out = tmp_path / "o"
    r = cli("render", f, junk, xxe, "-o", out, "--size", "64")
    assert r.exit_code == 1 and "Error: 1 of 3 inputs did not render" in r.stderr, r
    assert decode_png((out / "blue.svg.png").read_bytes())[:2] == (64, 48)
    assert "renders per second" in r.stdout
    lines = {
        line.split("│")[1].strip(): line.split("│")[2].strip() for line in r.stdout.splitlines() if line.count("│") >= 3
    }
    assert lines["rendered"] == "2"
    assert lines["failed: no_svg"] == "1"
    assert "junk.svg: no_svg: SVG is truncated" in r.stderr
    assert decode_png((out / "xxe.svg.png").read_bytes())[:2] == (64, 26)


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
    assert r.exit_code == 1 and r.json()["failed"] == {"no_svg": 1} and "Error: the input did not render" in r.stderr
    f = tmp_path / "b.svg"
    f.write_text(BLUE)
    monkeypatch.setenv("SVGRFT_CHROMIUM", str(tmp_path / "no-chromium"))
    r = cli("render", f, "-o", tmp_path / "o")
    assert r.exit_code == 1 and "apt-get install" in r.stderr and "Traceback" not in r.stderr


def test_colliding_stems_get_one_png_each(cli, tmp_path):
    """a/inheritance.svg, b/inheritance.svg and c/inheritance-2.svg once shared two PNG names ("-2" dedupe)."""
    colors = {
        "a/inheritance.svg": (255, 0, 0),
        "b/inheritance.svg": (0, 255, 0),
        "c/inheritance-2.svg": (0, 0, 255),
        "c/inheritance.txt": (255, 255, 0),
        "c/inheritance.txt.svg": (0, 255, 255),
    }
    for rel, rgb in colors.items():
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_text(
            f'<svg {NS} width="20" height="20"><rect width="20" height="20" fill="rgb{rgb}"/></svg>'
        )
    out = tmp_path / "out"
    r = cli(
        "render",
        tmp_path / "a",
        tmp_path / "b",
        tmp_path / "c",
        tmp_path / "c" / "inheritance.txt",
        tmp_path / "a" / "inheritance.svg",
        "-o",
        out,
        "--json",
    )  # a file given twice is rendered once
    assert r.exit_code == 0, r
    results = r.json()["results"]
    assert len(results) == 5 and r.json()["rendered"] == 5
    pngs = {x["source"]: x["png"] for x in results}
    assert len(set(pngs.values())) == 5
    for rel, rgb in colors.items():
        png = Path(pngs[str(tmp_path / rel)])
        assert png == out / (rel + ".png")
        assert pixel(png.read_bytes(), 10, 10) == rgb, rel
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(
        rel + ".png" for rel in colors
    )

    # one input alone: its name does not depend on others (the base is its own folder)
    r = cli("render", tmp_path / "b", "-o", tmp_path / "only-b", "--json")
    assert r.exit_code == 0 and r.json()["results"][0]["png"] == str(tmp_path / "only-b" / "inheritance.svg.png")

    # an existing target stops the run before anything is rendered; --overwrite replaces it
    out2 = tmp_path / "out2"
    stale = out2 / "b" / "inheritance.svg.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    r = cli("render", tmp_path / "b", tmp_path / "c", "-o", out2)
    assert r.exit_code == 1 and f"Error: {stale} already exists in {out2} from an earlier run" in r.stderr
    assert "hint: pass --overwrite" in r.stderr
    assert stale.read_bytes() == b"old" and [p.name for p in out2.iterdir()] == ["b"]
    r = cli("render", tmp_path / "b", tmp_path / "c", "-o", out2, "--overwrite", "--json")
    assert r.exit_code == 0 and r.json()["rendered"] == 3 and pixel(stale.read_bytes(), 10, 10) == (0, 255, 0)


def test_a_file_in_the_way_of_a_target_folder_is_one_error(cli, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "x.svg").write_text(BLUE)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a").write_text("a file where the folder a/ goes")
    r = cli("render", tmp_path / "a", tmp_path / "b", "-o", out)
    assert r.exit_code == 1 and f"Error: {out / 'a'} is a file" in r.stderr and "Traceback" not in r.stderr
    assert not (out / "b").exists()  # checked before anything was rendered
