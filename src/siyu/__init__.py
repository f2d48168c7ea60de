"""siyu — open-source private-domain marketing."""

__version__ = "0.1.0"
