"""The ``copilot`` command: every subcommand parses its arguments and calls one function of the core."""
