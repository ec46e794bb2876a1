"""golgi's version, in a module of its own: modules that record it (checkpoints, ``golgi
info``) import it from here without importing the whole package.

Example:
    >>> isinstance(__version__, str)
    True
"""

__version__ = "0.1.0"
