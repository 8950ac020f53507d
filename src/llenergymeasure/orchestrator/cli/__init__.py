"""The `llem` command line.

Progress goes to stderr, the final summary to stdout. Exit codes: 0 success,
1 a run or the study failed, 2 usage or configuration error, 130 interrupted
(Ctrl-C). Expected errors print one clear message and no traceback unless
``--verbose``. Command modules import their heavy dependencies inside the
command, so ``llem --version`` loads typer alone.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Callable

import typer

from llenergymeasure._version import __version__
from llenergymeasure.orchestrator.cli.config_cmd import config_command
from llenergymeasure.orchestrator.cli.image_cmd import image_app
from llenergymeasure.orchestrator.cli.report_cmd import report_command
from llenergymeasure.orchestrator.cli.run_cmd import run_command
from llenergymeasure.orchestrator.cli.selftest_cmd import selftest_command

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

app = typer.Typer(
    name="llem",
    help="Measure the energy efficiency of LLM inference: J per output token, tokens/s, baseline-adjusted "
    "energy and a power timeline, one container per experiment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llem {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """llenergymeasure command line."""


app.command("run", help="Run an experiment or a study (YAML file and/or flags).")(run_command)
app.command("report", help="Write the HTML report (and CSV) of finished studies; needs the [report] extra.")(
    report_command
)
app.command("config", help="Show what is installed and reachable, and the effective user config.")(config_command)
app.add_typer(image_app, name="image")
app.command("self-test", help="Validate this GPU host: images, counter phase test, model runs, report.")(
    selftest_command
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `llem`: maps errors to exit codes; never shows a traceback for expected errors."""
    args = sys.argv[1:] if argv is None else argv
    restore = _interrupt_on_signals()
    try:
        return _main(args)
    finally:
        restore()


def _main(args: list[str]) -> int:
    verbose = "--verbose" in args or "-v" in args
    command = typer.main.get_command(app)
    try:
        # typer in non-standalone mode *returns* the code of a raised typer.Exit, and turns a
        # KeyboardInterrupt into exit code 130 the same way: the return value is the exit code
        rv = command.main(args=args, prog_name="llem", standalone_mode=False)
    except typer.Exit as e:
        return int(e.exit_code)
    except typer.TyperException as e:  # usage errors: unknown option or command, bad value, missing argument
        show = getattr(e, "show", None)
        if callable(show):
            show(file=sys.stderr)
        else:
            print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, typer.Abort):
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        from llenergymeasure.errors import LLEMError

        if not isinstance(e, LLEMError):
            print(f"internal error: {type(e).__name__}: {e}", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            return EXIT_FAILED
        if verbose:
            traceback.print_exc(file=sys.stderr)
        print(f"error: {e.render()}", file=sys.stderr)
        return e.exit_code
    if rv == EXIT_INTERRUPTED:
        print("\ninterrupted", file=sys.stderr)
    return rv if isinstance(rv, int) else EXIT_OK


def _interrupt_on_signals() -> Callable[[], None]:
    """SIGINT and SIGTERM both become KeyboardInterrupt, so a study stops cleanly (containers removed,
    manifest marked interrupted) whether a person presses Ctrl-C or a scheduler terminates the job.
    SIGINT is handled even when a parent started us with it ignored (a shell's background job).

    Only the first signal interrupts: the ones that follow while llem cleans up are swallowed, so a
    second Ctrl-C cannot cut the clean-up short and print a traceback from the middle of it; a third
    leaves at once with exit code 130 (the manifest is written atomically, so it stays consistent)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    state = {"count": 0}

    def _interrupt(signum: int, frame: object) -> None:
        state["count"] += 1
        if state["count"] == 1:
            raise KeyboardInterrupt(f"signal {signum}")
        if state["count"] >= 3:
            _leave_now()

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, _interrupt)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def _leave_now(*_: object) -> None:
    """Exit 130 at once, flushing what was printed; nothing else runs (no atexit hook can raise)."""
    import os

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(EXIT_INTERRUPTED)


def entrypoint() -> None:
    """The console script: `main`, then an interpreter shutdown that a late Ctrl-C cannot turn into a traceback."""
    import signal

    code = main()
    # from here the interpreter runs its exit hooks (thread joins, atexit callbacks of libraries); a signal
    # arriving now ends the process with 130 instead of raising KeyboardInterrupt inside one of them
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _leave_now)
    sys.exit(code)
