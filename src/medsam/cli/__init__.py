"""The ``medsam`` command line.

Each subcommand lives in its own module of this package, listed in
:data:`SUBCOMMANDS`. A subcommand module defines

``HELP``
    one line shown by ``medsam --help``;
``add_arguments(parser)``
    adds its options to an :class:`argparse.ArgumentParser`;
``run(args) -> int``
    does the work and returns the exit status.

Subcommand modules import heavy dependencies (torch, SimpleITK, matplotlib)
inside ``run`` so that ``medsam --help`` stays fast.

Errors the user can fix are raised as :class:`medsam.errors.MedSAMError`; they are
printed as one line ``medsam: error: ...`` on stderr with exit status 2. An
``OSError`` the machine raised (a full disk, a file that vanished) is printed as
``medsam: error: PATH: reason`` with exit status 2, like a user error. Any other
exception is a bug (ours or a library's): it is printed as one line
``medsam: internal error: ...`` with exit status 1, and ``medsam --debug ...`` shows
its traceback. Nothing else prints errors.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn, Sequence

from .._version import __version__
from ..errors import MedSAMError, first_line

# subcommand name -> module (in the order shown by --help)
SUBCOMMANDS: dict[str, str] = {
    "segment": "medsam.cli.segment",
    "evaluate": "medsam.cli.evaluate",
    "compare": "medsam.cli.compare",
    "volume": "medsam.cli.volume",
    "report": "medsam.cli.report",
    "experts": "medsam.cli.experts",
    "prepare": "medsam.cli.prepare",
    "train": "medsam.cli.train",
    "weights": "medsam.cli.weights",
    "serve": "medsam.cli.serve",
    "pacs": "medsam.cli.pacs",
    "reproduce": "medsam.cli.reproduce",
    "benchmark": "medsam.cli.benchmark",
    "export": "medsam.cli.export",
}

#: the flag that sets each option of ``medsam.errors.OPTION_HINTS``
CLI_HINTS: dict[str, str] = {
    "overwrite": "pass --overwrite to replace it",
    "threshold": "pass --threshold to binarise it",
    "binary": "score them with --binary",
    "names": "name them with --names",
    "allow_missing": "pass --allow-missing to compare the common cases only",
    "modality": "give --modality (ct, mr, xray, us, ...) to normalise them",
    "resume": "--resume continues it, --overwrite starts again",
    "case_pattern": "see --case-pattern",
    "margin": "see --margin",
    "allow_incomplete": "pass --allow-incomplete to use it anyway",
    "subset": "pass --subset to score only the cases that have predictions",
}


def finite_float(text: str) -> float:
    """The ``type`` of every number option: a float that is finite (argparse's ``float``
    takes "nan" and "inf", which make results silently wrong)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (no usage block), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="medsam",
        description="Promptable medical image segmentation (MedSAM).",
    )
    parser.add_argument("--version", action="version", version=f"medsam {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP, epilog=getattr(module, "EPILOG", None))
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args._run(args) or EXIT_OK)
    except MedSAMError as exc:
        print(f"medsam: error: {exc.render(CLI_HINTS)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("medsam: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped (`| head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:  # the machine refused (a full disk, a file gone): not a bug of ours
        where = f"{exc.filename}: " if exc.filename else ""
        reason = os.strerror(exc.errno).lower() if exc.errno else first_line(exc)
        print(f"medsam: error: {where}{reason}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # the last line of defence: a bug of ours or a library's
        if args.debug:
            raise
        print(f"medsam: internal error: {type(exc).__name__}: {first_line(exc)} "
              f"(rerun with `medsam --debug {args.command} ...` for the traceback)", file=sys.stderr)
        return EXIT_FAILURE
