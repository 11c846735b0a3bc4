import shutil

import pytest

import medsam
from medsam.cli import main


def test_version_subprocess(cli_process):
    result = cli_process("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"medsam {medsam.__version__}"


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: medsam" in capsys.readouterr().out


@pytest.mark.parametrize("code", ["import medsam",
                                  "from medsam.cli import build_parser; build_parser()",
                                  "from medsam.cli import main; assert main(['segment', 'missing.png', "
                                  "'-o', 'x.png']) == 2"])
def test_import_and_the_parser_do_not_import_torch(code, tmp_path):
    """``import medsam`` does no work, and neither does building the command line's
    parser, nor ``medsam segment`` on a missing input: an option error or a missing file
    is reported in well under a second, not after importing torch (a U-Net segmenter once
    imported it at module level, ``medsam.distributed`` before it read the environment)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", f"import sys; {code}; print('torch' in sys.modules)"],
                         capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(__import__('pathlib').Path(medsam.__file__).parents[1])})
    assert out.stdout.strip() == "False", out.stderr


def test_console_script_installed():
    # CI installs the package as the README says, so the entry point exists there.
    exe = shutil.which("medsam")
    assert exe is not None, "the `medsam` console script is not on PATH; install with pip"


def test_library_hints_become_flags_on_the_command_line():
    """Library messages name the Python option; the command line names its flag; a front
    end without a hint for an option shows none (never the Python one)."""
    from medsam.cli import CLI_HINTS
    from medsam.errors import OPTION_HINTS, InputError, as_failure

    assert set(CLI_HINTS) == set(OPTION_HINTS)
    for option in OPTION_HINTS:
        error = InputError("x: something", option=option)
        assert "--" not in str(error) and str(error) == f"x: something; {OPTION_HINTS[option]}"
        assert error.render(CLI_HINTS) == f"x: something; {CLI_HINTS[option]}"
        assert error.render({}) == "x: something"
        failure = as_failure(error, "case a")    # a batch item keeps its option
        assert failure.render(CLI_HINTS) == f"case a: x: something; {CLI_HINTS[option]}"
    assert as_failure(KeyError("k"), "case b").render() == "case b: KeyError: 'k'"
    assert as_failure(ValueError(""), "case c").render() == "case c: ValueError"
