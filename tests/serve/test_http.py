"""The explorer's HTTP API against a real uvicorn server (tests/serve/conftest.py).

Oracles: an image the server sends must equal, pixel for pixel, the file that its own "copy as CLI command" line
writes when run through `stylegan` (a separate path: click parsing, the model loaded again from disk, files);
the grid geometry comes from the paper's layout (B along the top, A down the left, 2-pixel gaps).
"""

from __future__ import annotations

import io
import shlex
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from stylegan.cli.main import main
from stylegan.forensics import mark

ALIVE = "/api/generate.png?seed=1"


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def command(reply) -> list[str]:
    return shlex.split(urllib.parse.unquote(reply.headers["x-stylegan-command"]))


def run_cli(args: list[str], cwd: Path, monkeypatch) -> None:
    monkeypatch.chdir(cwd)
    assert args[0] == "stylegan"
    res = CliRunner().invoke(main, args[1:])
    assert res.exit_code == 0, res.output


def test_models_lists_what_each_model_needs(server):
    models = server.get("/api/models").json()["models"]
    assert [m["key"] for m in models] == ["0", "1", "2"]
    builtin, sg3, cond = models
    assert (builtin["resolution"], builtin["channels"], builtin["c_dim"], builtin["sg3"]) == (32, 1, 0, False)
    assert (sg3["resolution"], sg3["channels"], sg3["sg3"], sg3["num_ws"]) == (32, 3, True, 16)
    assert (cond["resolution"], cond["c_dim"]) == (16, 5)
    assert builtin["groups"] == {"coarse": [0, 1, 2], "middle": [3, 4], "fine": [5, 6, 7]}


def test_page_and_static_files_are_served_with_security_headers(server):
    page = server.get("/")
    assert page.status == 200 and b'<script type="module" src="/static/app.js">' in page.body
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    for path in ("/static/app.js", "/static/common.js", "/static/views/generate.js", "/static/style.css"):
        assert server.get(path).status == 200, path


GENERATE_CASES = [
    ("0", "seed=3&psi=0.5&cutoff=4"),
    ("0", "seed=4000000000&psi=-0.5&noise=none"),
    ("1", "seed=7&psi=0.8&tx=0.125&ty=-0.25&rotate=30"),
    ("2", "seed=2&class=3"),
]


@pytest.mark.parametrize("model, params", GENERATE_CASES)
def test_generate_equals_what_its_cli_line_writes(server, model, params, tmp_path, monkeypatch):
    reply = server.get(f"/api/generate.png?model={model}&{params}")
    assert reply.status == 200 and reply.headers["content-type"] == "image/png"
    args = command(reply)
    assert args[:2] == ["stylegan", "generate"]
    run_cli(args, tmp_path, monkeypatch)
    seed = int(urllib.parse.parse_qs(params)["seed"][0])
    np.testing.assert_array_equal(pixels(reply.body), pixels((tmp_path / "out" / f"seed{seed:04d}.png").read_bytes()))


def test_generate_cli_line_names_the_options_that_differ(server):
    args = command(server.get("/api/generate.png?seed=5&psi=-0.25&cutoff=3&noise=random"))
    assert args == [
        "stylegan",
        "generate",
        "--seeds",
        "5",
        "--trunc=-0.25",
        "--trunc-cutoff",
        "3",
        "--noise-mode",
        "random",
        "--outdir",
        "out",
    ]
    assert "--network" in command(server.get("/api/generate.png?model=1"))


def test_seed_and_psi_change_the_image(server):
    base = pixels(server.get("/api/generate.png?seed=1").body)
    assert pixels(server.get("/api/generate.png?seed=1").body).tolist() == base.tolist()  # const noise: stable
    assert np.abs(pixels(server.get("/api/generate.png?seed=2").body).astype(int) - base).mean() > 1
    assert np.abs(pixels(server.get("/api/generate.png?seed=1&psi=0").body).astype(int) - base).mean() > 1


def test_mix_equals_what_its_cli_line_writes(server, tmp_path, monkeypatch):
    reply = server.get("/api/mix.png?rows=1,2,3&cols=4-5&styles=0-3&psi=0.7")
    assert reply.status == 200
    grid = pixels(reply.body)
    assert grid.shape == (4 * 32 + 3 * 2, 3 * 32 + 2 * 2)  # (1 + rows) x (1 + cols) cells, 2-pixel gaps
    args = command(reply)
    assert args[:2] == ["stylegan", "mix"] and args[args.index("--styles") + 1] == "0-3"
    run_cli(args, tmp_path, monkeypatch)
    np.testing.assert_array_equal(grid, pixels((tmp_path / "mixing.png").read_bytes()))


def test_served_images_carry_the_provenance_mark_and_metadata(server):
    small = Image.open(io.BytesIO(server.get("/api/generate.png?seed=7&psi=0.5").body))
    assert small.text["DigitalSourceType"].endswith("trainedAlgorithmicMedia")
    assert small.text["stylegan:seed"] == "7" and small.text["stylegan:truncation_psi"] == "0.5"
    assert small.text["stylegan:mark"].startswith("none")  # 32x32: too small for the mark, metadata only
    grid = Image.open(io.BytesIO(server.get("/api/mix.png?rows=1,2,3,4&cols=5,6,7,8").body))
    assert min(grid.size) >= mark.MIN_SIDE and grid.text["stylegan:mark"].startswith("v1")


def test_mix_defaults_to_the_coarse_layers(server):
    args = command(server.get("/api/mix.png?rows=1&cols=2"))
    assert args[args.index("--styles") + 1] == "0-2"


def test_sg3_transform_does_not_leak_into_later_requests(server):
    plain = server.get("/api/generate.png?model=1&seed=3").body
    moved = server.get("/api/generate.png?model=1&seed=3&tx=0.25&rotate=45").body
    assert pixels(moved).tolist() != pixels(plain).tolist()
    assert server.get("/api/generate.png?model=1&seed=3").body == plain


def test_concurrent_requests_get_their_own_image(server):
    """Interleaved transformed and plain requests on one SG3 model: each answer equals its request made alone."""
    paths = [f"/api/generate.png?model=1&seed={i % 3}" + ("&tx=0.2&rotate=20" if i % 2 else "") for i in range(16)]
    alone = {p: server.get(p).body for p in set(paths)}
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda p: server.get(p), paths))
    assert all(r.status == 200 for r in together)
    assert [r.body for r in together] == [alone[p] for p in paths]


BAD_PARAMS = [
    ("/api/generate.png?seed=abc", "seed"),
    ("/api/generate.png?seed=-1", "seed"),
    ("/api/generate.png?seed=4294967296", "seed"),
    ("/api/generate.png?psi=nan", "psi"),
    ("/api/generate.png?psi=inf", "psi"),
    ("/api/generate.png?psi=3", "psi"),
    ("/api/generate.png?cutoff=9", "cutoff"),
    ("/api/generate.png?noise=loud", "noise"),
    ("/api/generate.png?model=7", "model"),
    ("/api/generate.png?model=..%2F..%2Fetc%2Fpasswd", "model"),
    ("/api/generate.png?class=1", "unconditional"),
    ("/api/generate.png?model=2&class=5", "class"),
    ("/api/generate.png?tx=0.1", "StyleGAN3"),
    ("/api/generate.png?model=1&tx=5", "tx"),
    ("/api/mix.png?rows=0-4000000000", "at most 8"),
    ("/api/mix.png?cols=1,2,3,4,5,6,7,8,9", "at most 8"),
    ("/api/mix.png?rows=a,b", "rows"),
    ("/api/mix.png?rows=", "rows"),
    ("/api/mix.png?styles=0-8", "styles"),
    ("/api/mix.png?styles=" + "1," * 200, "too long"),
]


@pytest.mark.parametrize("path, word", BAD_PARAMS)
def test_bad_parameters_are_4xx_with_a_message(server, path, word):
    reply = server.get(path)
    assert reply.status == 400, reply.body
    message = reply.json()["error"]
    assert word in message and "\n" not in message
    assert server.get(ALIVE).status == 200


def test_unknown_routes_methods_and_hosts_are_refused(server):
    assert server.get("/api/nothing").status == 404
    assert server.request("POST", "/api/generate.png").status == 405
    assert server.get("/static/../app.py").status == 404
    assert server.get("/static/%2e%2e/app.py").status == 404
    assert server.get("/api/models", headers={"Host": "attacker.example"}).status == 400  # DNS rebinding
    assert server.get(ALIVE).status == 200
