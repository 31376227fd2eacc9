"""Subcommands of the ``hand-perception`` command line, one module each.

Each module has ``HELP`` (one line), ``add_arguments(parser)`` and ``run(options) -> int``;
hand_perception/cli.py lists them in ``COMMANDS``.
"""
