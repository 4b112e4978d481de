"""`stylegan serve`: the explorer, a local web page over the library (stylegan.serve)."""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path

import click

from stylegan.cli.common import device_option, get_device, load_signing, sign_options, user_errors

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@click.command()
@click.option(
    "--network",
    "networks",
    multiple=True,
    help="A model to offer (repeat for several): a .safetensors or NVIDIA .pkl file, a model name (`stylegan "
    "models`) or an http(s) URL. Default: the models shipped with the package (built-in, and faces when present).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True, help="Port (0: any free one).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds a request may wait and run before it is answered 504.",
)
@click.option(
    "--project-steps",
    type=click.IntRange(1, 2000),
    default=100,
    show_default=True,
    help="Default W steps of the Project view (the paper uses 1000: fine on a GPU, minutes on a CPU).",
)
@click.option(
    "--trust-anchors",
    "anchor_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="PEM file(s) of root/CA certificates whose C2PA signers the Check view calls trusted (repeatable; default: "
    "STYLEGAN_TRUST_ANCHORS, as `stylegan detect`).",
)
@sign_options
@device_option
def serve(networks, host, port, timeout, project_steps, anchor_paths, sign_cert, sign_key, device):
    """Open the explorer: generate, mix, edit, project and check images in a web page that follows the sliders live.

    \b
    Examples:
      stylegan serve                                    # the built-in model, http://127.0.0.1:7860
      stylegan serve --network ffhq.pkl --network stylegan3-r-ffhqu-256 --port 8000

    With --sign-cert/--sign-key every generated image the page shows (generate, mix, edit, projection preview)
    carries signed C2PA content credentials, so a picture saved from it is signed; uploaded targets are not.
    """
    _check_extra()
    credentials = load_signing(sign_cert, sign_key)
    if anchor_paths:
        _use_trust_anchors(anchor_paths)
    if host not in LOCAL_HOSTS:
        click.echo(
            f"warning: --host {host} makes the explorer reachable from other machines; it has no login. "
            "Use it only on a network you trust.",
            err=True,
        )
    sock = _bind(host, port)
    app = _build_app(networks, device, timeout, host, project_steps, credentials)
    _run(app, sock, host)


def _check_extra() -> None:
    missing = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise click.ClickException(f"stylegan serve needs {' and '.join(missing)}: pip install 'stylegan[serve]'")


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the models load so that a taken port fails fast, in one line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it, uvicorn on a socket of ours answers keep-alive requests
    # ~40 ms late (Nagle's algorithm meets the client's delayed ACK between the header and body writes).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # connections made from here on wait for the server instead of being refused
    except OSError as err:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port} ({err.strerror}); pass another --port") from None
    return sock


def _build_app(
    networks: tuple[str, ...], device: str, timeout: float, host: str, project_steps: int = 100, credentials=None
):
    from stylegan.io import default_model_path
    from stylegan.serve import Settings, create_app, load_slots
    from stylegan.serve.models import builtin_specs

    if not networks and not default_model_path().exists():
        raise click.ClickException("no --network given and no default model is installed; pass --network")
    dev = get_device(device)
    with user_errors():
        slots = load_slots(list(networks) or builtin_specs(), dev, timeout_s=timeout, signing=credentials)
    hosts = ("*",) if host not in LOCAL_HOSTS else Settings().allowed_hosts
    return create_app(slots, Settings(allowed_hosts=hosts, project_steps=project_steps))


def _run(app, sock: socket.socket, host: str) -> None:
    import uvicorn

    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"stylegan explorer on http://{shown}:{port}/ (Ctrl+C stops)")
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def _use_trust_anchors(paths) -> None:
    """Checks the --trust-anchors files now (one line if unusable) and hands them to the Check view, which reads
    STYLEGAN_TRUST_ANCHORS on every check."""
    from stylegan.forensics import c2pa
    from stylegan.serve.check import ANCHORS_ENV

    if not c2pa.available():
        raise click.ClickException("--trust-anchors needs the c2pa extra: pip install stylegan[c2pa]")
    try:
        c2pa.load_trust_anchors([str(p) for p in paths])
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    os.environ[ANCHORS_ENV] = os.pathsep.join(str(p) for p in paths)
