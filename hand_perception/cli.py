"""``hand-perception``: the package's command line; ``hand-perception <command> --help`` for each.

Commands are modules of hand_perception.tools (HELP, add_arguments, run), imported only when
used so that ``--help`` stays fast and one command's heavy dependencies never slow another.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Optional, Sequence

#: command name -> module under hand_perception.tools
COMMANDS = {
    "demo": "demo",
    "run": "run_graph",
    "detect": "detect",
    "record": "record",
    "export-lerobot": "export_lerobot",
}


def _available_commands():
    for name, module_name in COMMANDS.items():
        try:
            yield name, importlib.import_module(f"hand_perception.tools.{module_name}")
        except ModuleNotFoundError as error:
            if error.name != f"hand_perception.tools.{module_name}":
                raise  # a real missing dependency inside the command: surface it


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hand-perception", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, module in _available_commands():
        sub = commands.add_parser(name, help=module.HELP, description=module.__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    options = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if options.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    return int(options.run(options) or 0)


if __name__ == "__main__":
    sys.exit(main())
