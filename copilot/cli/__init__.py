"""The ``copilot`` command: each subcommand parses its arguments and calls one core function."""
