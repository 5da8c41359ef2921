"""The `tunesmith` command: one entry point, one module per subcommand group.

Exit codes: 0 success, 2 bad usage or bad input (one-line reason on stderr), 1 internal failure.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from tunesmith import __version__
from tunesmith.errors import TunesmithError


class UsageError(Exception):
    """Raised by the argument parser instead of printing the whole usage block."""


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line (and exit code 2 via `main`)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.split(" ", 1)[1] if " " in self.prog else ""  # "tunesmith generate" -> "generate"
        raise UsageError(f"{command + ': ' if command else ''}{message} (see {self.prog} --help)")


def build_parser() -> ArgumentParser:
    """Assemble the parser from the subcommand modules."""
    from tunesmith.cli import analyze, bench, data, demo, evaluate, generate, keys, models, serve, train, verify

    parser = ArgumentParser(prog="tunesmith", description="Self-hostable AI music creation.")
    parser.add_argument("--version", action="version", version=f"tunesmith {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    for module in (serve, keys, models, generate, analyze, verify, data, train, evaluate, bench, demo):
        module.register(sub)
    return parser


def with_option(error: TunesmithError, parser: ArgumentParser | None, args: argparse.Namespace | None) -> str:
    """An error's message led by the option it is about ("--style: unknown style ..."), when its field is an
    option of the command that was run and the message does not already name it (nor its field: a server's
    "422 invalid_parameter: params.bars: ...")."""
    message = str(error)
    if not error.field or parser is None or args is None or getattr(args, "command", None) is None:
        return message
    option = "--" + error.field.removeprefix("params.").removeprefix("--").replace("_", "-")
    commands = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})
    command = commands.get(args.command)
    if command is None or option in message or error.field in message or option not in command._option_string_actions:
        return message
    return f"{option}: {message}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser, args = None, None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        result = args.func(args)
        return int(result or 0)
    except UsageError as exc:
        print(f"tunesmith: error: {exc}", file=sys.stderr)
        return 2
    except TunesmithError as exc:
        print(f"tunesmith: error: {with_option(exc, parser, args)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`| head`): not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("tunesmith: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so, with the trace for the report
        traceback.print_exc()
        print(f"tunesmith: internal error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
