"""Temporary files that become real files atomically, and the clean-up of our own leftovers.

``golgi.save`` and the dataset downloads write to a temporary file in the destination's
folder and rename it into place, so a reader never sees half a file. Temporary files are
named ``.<file>.golgi-<host>-<pid>.<random><suffix>``: a later save or download to the same
place recognises the leftovers of a killed process (same host, same user, the process gone)
and removes them, and touches nothing else.

Example:
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     fd, path = make_temp(d, "model.npz", ".tmp"); os.close(fd)
    ...     os.path.basename(path).startswith(".model.npz.golgi-")
    True
"""

from __future__ import annotations

import errno
import os
import re
import socket
import stat
import tempfile

__all__ = ["make_temp", "remove_stale_temps", "write_target", "umask"]


def write_target(path: str, who: str = "golgi.save") -> str:
    """The file to replace when writing ``path``: ``path``, or the file it links to (the link
    itself stays), with errors naming ``who``, ``path`` and the fix.

    Example:
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as d:
        ...     write_target(os.path.join(d, "m.npz")) == os.path.realpath(os.path.join(d, "m.npz"))
        True
    """
    target = os.path.realpath(path)
    if os.path.islink(target):  # realpath gives up on a loop and returns a link
        raise OSError(errno.ELOOP, f"{who}: cannot write {path}: a symbolic link loop")
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        via = "" if target == os.path.abspath(path) else f" (the target of the link {path})"
        raise FileNotFoundError(
            f"{who}: cannot write {path}{via}: the folder {folder} does not exist; "
            f"create it first (os.makedirs({folder!r}, exist_ok=True))"
        )
    return target


def umask() -> int:
    """The process's umask (the permissions a new file does not get).

    Example:
        >>> 0 <= umask() <= 0o777
        True
    """
    # reading the umask means setting it; put it straight back
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def make_temp(folder: str, base: str, suffix: str) -> tuple[int, str]:
    """A new temporary file for ``base`` in ``folder``: ``(fd, path)``, named so that
    :func:`remove_stale_temps` can recognise it if this process dies before renaming it.

    Example:
        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     fd, p = make_temp(d, "x.npz", ".tmp"); os.close(fd); p.endswith(".tmp")
        True
    """
    prefix = f".{base}.golgi-{_host()}-{os.getpid()}."
    return tempfile.mkstemp(dir=folder or ".", prefix=prefix, suffix=suffix)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists but is someone else's
        return True
    return True


def remove_stale_temps(folder: str, base: str, suffix: str) -> None:
    """Delete temporary files for ``base`` that a killed golgi process left in ``folder``.

    Only files named by :func:`make_temp` on this host, owned by this user, whose process
    is gone, are removed; nothing else is touched, and failures are ignored.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     remove_stale_temps(d, "model.npz", ".tmp")
    """
    if os.name != "posix":  # os.kill(pid, 0) would kill the process on Windows
        return
    pattern = re.compile(
        rf"\.{re.escape(base)}\.golgi-{_host()}-(\d+)\.[A-Za-z0-9_]+{re.escape(suffix)}\Z"
    )
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return
    for name in names:
        m = pattern.match(name)
        if m is None or int(m[1]) == os.getpid() or _alive(int(m[1])):
            continue
        full = os.path.join(folder, name)
        try:
            st = os.lstat(full)
            if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid():
                os.remove(full)
        except OSError:
            pass


