"""router7: a home internet router's services, each a Twisted daemon."""

__version__ = "0.1.0"
