"""One module per `choreoscope` subcommand. Each defines ``ORDER`` (its place in
``--help``) and ``register(subparsers)``, which adds its parser and sets
``handler`` to a function ``(args) -> int``.
"""
