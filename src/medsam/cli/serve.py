"""``medsam serve``: the interactive web app (needs the ``[web]`` extra and the NiiVue viewer).

Examples::

    medsam serve                                  # http://127.0.0.1:8765, LiteMedSAM
    medsam serve --port 9000 --checkpoint my_finetuned.pth
    medsam serve --host 0.0.0.0                   # reachable from other machines: token required

All the work is done by :mod:`medsam.web`; this module reads options, loads the model,
prints the address and runs uvicorn.
"""

from __future__ import annotations

import argparse
import ipaddress
import secrets
import sys

from . import finite_float

HELP = "open the interactive web app: upload a scan, draw boxes, refine, propagate, export"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .segment import add_model_arguments

    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; another "
                             "address exposes the app and requires an access token)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    parser.add_argument("--token", help="access token to require (default: a random one when --host "
                                        "exposes the app, none on 127.0.0.1)")
    add_model_arguments(parser)
    parser.add_argument("--max-sessions", type=int, default=8, help="sessions open at once (default 8)")
    parser.add_argument("--idle-minutes", type=finite_float, default=30.0,
                        help="close a session unused for this long (default 30)")
    parser.add_argument("--max-upload-mb", type=finite_float, default=1024.0,
                        help="largest upload in MiB (default 1024)")
    parser.add_argument("--max-memory-gb", type=finite_float, default=8.0,
                        help="memory all sessions may hold together, in GiB (default 8)")
    parser.add_argument("--pacs", nargs="?", const="", metavar="ADDRESS",
                        help="let the page open series from a PACS and store SEGs on it (DICOMweb: "
                             "dicomweb://HOST:PORT/PATH; without ADDRESS, $MEDSAM_PACS_URL or the config "
                             "file's); credentials from the environment or the config file, kept on the server")
    parser.add_argument("--pacs-config", metavar="FILE",
                        help="the PACS's settings and credentials (JSON; see docs/pacs.md)")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _replay_options(args: argparse.Namespace) -> str:
    """The ``medsam segment`` options naming the same model (empty for the default)."""
    import shlex

    if args.checkpoint:
        return f"--checkpoint {shlex.quote(args.checkpoint)}"
    return f"--weights {shlex.quote(args.weights)}" if args.weights else ""


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError, install_hint
    from ..segmentation import MedSAMSegmenter
    from ..web import ServerLimits, create_app, viewer_files
    from .segment import model_segmenter

    for name in ("max_sessions", "idle_minutes", "max_upload_mb", "max_memory_gb"):
        if getattr(args, name) <= 0:
            raise InputError(f"--{name.replace('_', '-')} must be positive")
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port}: not a port number (0..65535)")
    viewer_files()  # fail before loading the model when the viewer is missing
    try:
        import uvicorn
    except ImportError:
        raise InputError(f"medsam serve needs FastAPI and uvicorn: {install_hint('web')}") from None
    token = args.token
    if not _loopback(args.host):
        token = token or secrets.token_urlsafe(16)
        print(f"medsam: warning: the app is reachable from other machines on {args.host}; anyone with the "
              f"token can read the images uploaded to it. Use it on a trusted network only.", file=sys.stderr)
    pacs = None
    if args.pacs is not None:
        from ..io.dicomweb import find_series, pacs_server

        pacs = pacs_server(args.pacs or None, args.pacs_config)
        find_series(pacs, study="0")   # the server answers and takes the credentials, before the model loads
    first = model_segmenter(args, args.device, interactive=True)
    if not isinstance(first, MedSAMSegmenter):
        raise InputError(f"--checkpoint {args.checkpoint}: the web app runs MedSAM-family models; "
                         f"this is a {type(getattr(first, 'model', first)).__name__} (use medsam segment for it)")
    limits = ServerLimits(max_sessions=args.max_sessions, idle_seconds=args.idle_minutes * 60,
                          max_upload_bytes=int(args.max_upload_mb * 2**20),
                          max_memory_bytes=int(args.max_memory_gb * 2**30))

    def make_segmenter() -> MedSAMSegmenter:
        return MedSAMSegmenter(first.model, transform=first.transform, precision=first.precision,
                               cache_slices=limits.cache_slices, store=first.store)

    app = create_app(make_segmenter, limits=limits, token=token, model_name=args.checkpoint or args.weights or
                     "lite_medsam", replay_options=_replay_options(args), pacs=pacs)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    address = f"http://{shown}:{args.port}/" + (f"?token={token}" if token else "")
    print(f"medsam: serving the web app on {address} (Ctrl+C to stop)"
          + (f"; PACS {pacs.describe()}" if pacs is not None else ""), flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
