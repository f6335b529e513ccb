"""Code Executor: run untrusted code in locked-down containers, interactively."""

__version__ = "0.1.0"
