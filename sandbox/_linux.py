"""Thin ctypes wrappers for the Linux syscalls the sandbox needs.

Python 3.11 has no ``os.unshare``/``os.setns``/``mount``; calling libc through ctypes keeps
the sandbox free of compiled extensions and apt packages (no bubblewrap needed).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1
_SYS_PIVOT_ROOT, _SYS_KEYCTL = 155, 250  # x86_64
if os.uname().machine in ("aarch64", "arm64"):
    _SYS_PIVOT_ROOT, _SYS_KEYCTL = 41, 219
KEYCTL_JOIN_SESSION_KEYRING = 1

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long


def _check(ret: int, what: str) -> None:
    """Turn a libc ``-1`` return into an OSError carrying errno, so callers see *why*."""
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def unshare(flags: int) -> None:
    """unshare(2): move the caller into new namespaces."""
    _check(_libc.unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int) -> None:
    """setns(2): join (or, for pid namespaces, reset children's) namespace held by ``fd``."""
    _check(_libc.setns(fd, nstype), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    """mount(2)."""
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
           f"mount({source!r} -> {target!r})")


def umount2(target: str, flags: int = 0) -> None:
    """umount2(2)."""
    _check(_libc.umount2(_b(target), flags), f"umount2({target!r})")


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2) via syscall(2): glibc has no wrapper."""
    ret = _libc.syscall(_SYS_PIVOT_ROOT, _b(new_root), _b(put_old))
    _check(int(ret), "pivot_root")


def prctl(option: int, arg2: int = 0) -> None:
    """prctl(2) for the few options used (no_new_privs, pdeathsig)."""
    _check(_libc.prctl(option, arg2, 0, 0, 0), f"prctl({option})")


def join_new_session_keyring() -> None:
    """keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL): a fresh anonymous session keyring, so the
    job does not possess keys of the process that forked it. Best effort (ENOSYS is fine)."""
    _libc.syscall(_SYS_KEYCTL, KEYCTL_JOIN_SESSION_KEYRING, None)
