"""The one exception the dataset loaders raise for missing, corrupt or unreachable data.

Example:
    >>> from golgi.datasets import DatasetError
    >>> issubclass(DatasetError, ValueError)
    True
"""

from __future__ import annotations

__all__ = ["DatasetError"]


class DatasetError(ValueError):
    """Data files are missing, corrupt, or could not be downloaded.

    The message names the file or mirror involved and says how to fix it.

    Example:
        >>> raise DatasetError("/tmp/x: bad magic number 0x00000000")
        Traceback (most recent call last):
        golgi.datasets.errors.DatasetError: /tmp/x: bad magic number 0x00000000
    """
