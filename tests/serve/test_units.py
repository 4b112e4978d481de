"""Pieces of the explorer without a server: the worker's queue and timeout, parameter parsing, the CLI command,
and the rule that serve/ calls the library, never the CLI."""

from __future__ import annotations

import ast
import asyncio
import socket
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from serve_helpers import require_serve_extra

from stylegan.cli.main import main
from stylegan.serve.params import GenerateRequest, MixRequest, ModelInfo, ParamError, seed_list
from stylegan.serve.worker import Busy, JobTimeout, Worker

SERVE = Path(__file__).resolve().parents[2] / "src" / "stylegan" / "serve"
SG1_LIKE = ModelInfo(num_ws=18, c_dim=0, sg3=False, default_psi=0.7, default_cutoff=8, spec="ffhq.pkl")


def test_worker_runs_jobs_one_at_a_time_in_order():
    worker, seen, running = Worker("t"), [], []

    def job(i):
        running.append(threading.get_ident())
        assert len(running) == 1
        time.sleep(0.01)
        seen.append(i)
        running.pop()
        return i

    async def go():
        return await asyncio.gather(*(worker.run(job, i) for i in range(8)))

    assert asyncio.run(go()) == list(range(8)) and seen == list(range(8))
    worker.close()


def test_worker_refuses_when_the_queue_is_full():
    worker, gate = Worker("t", max_pending=2, timeout_s=5), threading.Event()

    async def go():
        jobs = [asyncio.ensure_future(worker.run(gate.wait)) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(Busy, match="busy"):
            await worker.run(gate.wait)
        gate.set()
        await asyncio.gather(*jobs)
        return await worker.run(lambda: "after")  # the queue drained: accepted again

    assert asyncio.run(go()) == "after"
    worker.close()


def test_worker_times_out_and_drops_jobs_that_never_started():
    worker, gate, ran = Worker("t", timeout_s=0.1), threading.Event(), []

    async def go():
        slow = asyncio.ensure_future(worker.run(gate.wait, 5))
        waiting = asyncio.ensure_future(worker.run(ran.append, "late"))
        for task in (slow, waiting):
            with pytest.raises(JobTimeout, match="took over 0.1 s"):
                await task
        gate.set()
        return await worker.run(lambda: "next")

    assert asyncio.run(go()) == "next" and ran == []  # the waiting job was dropped, not run later
    worker.close()


def test_cli_line_for_a_model_with_its_own_truncation_defaults():
    """A StyleGAN1-like model (psi 0.7, cutoff 8): 'all ws' must be spelled out, since the CLI's default is 8."""
    req = GenerateRequest.parse({"seed": "12", "cutoff": "18"}, SG1_LIKE)
    assert req.trunc.cutoff is None and req.trunc.psi == 0.7
    assert (
        req.cli_command(SG1_LIKE)
        == "stylegan generate --network ffhq.pkl --seeds 12 --trunc 0.7 --trunc-cutoff 18 --outdir out"
    )
    assert "--trunc-cutoff" not in GenerateRequest.parse({"cutoff": "8"}, SG1_LIKE).cli_command(SG1_LIKE)


def test_cli_line_quotes_paths_and_keeps_negative_values_attached():
    info = ModelInfo(16, 0, True, 1.0, None, "my models/sg3 r.pkl")
    req = GenerateRequest.parse({"seed": "1", "psi": "-0.5", "tx": "-0.1", "ty": "0", "rotate": "-15"}, info)
    assert req.cli_command(info) == (
        "stylegan generate --network 'my models/sg3 r.pkl' --seeds 1 --trunc=-0.5 "
        "--translate=-0.1,0 --rotate=-15 --outdir out"
    )
    mix = MixRequest.parse({"rows": "3,1,2", "cols": "4-6", "styles": "0-3,5"}, info, [0])
    assert mix.cli_command(info).endswith("--rows 3,1-2 --cols 4-6 --styles 0-3,5 --trunc 1 --zoom 1 --out mixing.png")


def test_seed_lists_are_bounded_before_they_are_expanded():
    assert seed_list("1-3,7", "rows", 8) == [1, 2, 3, 7]
    started = time.perf_counter()
    with pytest.raises(ParamError, match="at most 8"):
        seed_list("0-4294967295", "rows", 8)
    assert time.perf_counter() - started < 0.1


def test_serve_never_imports_the_cli_or_click():
    names = set()
    for path in SERVE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
    assert names and not {n for n in names if n.split(".")[0] == "click" or n.startswith("stylegan.cli")}


def test_serve_command_without_the_extra_says_how_to_install_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    res = CliRunner().invoke(main, ["serve"])
    assert res.exit_code == 1 and "pip install 'stylegan[serve]'" in res.output


def test_serve_command_warns_on_all_interfaces_and_builds_the_app(monkeypatch):
    require_serve_extra()
    import stylegan.cli.serve as cli_serve

    ran = []
    monkeypatch.setattr(cli_serve, "_run", lambda app, sock, host: (ran.append(app), sock.close()))
    res = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--port", "0"])
    assert res.exit_code == 0, res.output
    assert "warning: --host 0.0.0.0" in res.output and len(ran) == 1


def test_serve_command_on_a_taken_port_is_one_line():
    require_serve_extra()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = CliRunner().invoke(main, ["serve", "--port", str(port)])
    assert res.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in res.output
    assert len(res.output.strip().splitlines()) == 1
