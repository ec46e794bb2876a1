"""golgi's version, in a module of its own so any module can read it without importing the
package (which would make an import cycle).

Example:
    >>> isinstance(__version__, str)
    True
"""

__version__ = "0.1.0"
