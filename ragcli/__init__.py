"""ragcli: ask questions of your documents from the terminal, with local models."""

__version__ = "0.1.0"
