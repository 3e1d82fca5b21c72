"""Thin ctypes wrappers for the Linux syscalls the sandbox needs.

Python 3.11 has no ``os.unshare``/``os.setns``/``mount``; calling libc through ctypes keeps
the sandbox free of compiled extensions and apt packages (no bubblewrap needed).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any

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


# ------------------------------------------------------------------------------ seccomp
#
# A deny-list filter in classic BPF, installed with prctl(2): no libseccomp binding needed.
# Why these calls: they are kernel attack surface a test program never needs (io_uring,
# userfaultfd, perf events, eBPF, AF_VSOCK sockets), cross-job channels (the uid's kernel
# keyrings), or ways to change the confinement from inside (mount, namespaces, ptrace).

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000
_EPERM, _ENOSYS = 1, 38
AF_VSOCK = 40
_NS_FLAGS = 0x7E020080  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME

# name -> syscall number per architecture (audit arch, table)
_SYSCALLS: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (0xC000003E, {
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "userfaultfd": 323, "perf_event_open": 298, "bpf": 321, "keyctl": 250,
        "add_key": 248, "request_key": 249, "ptrace": 101, "mount": 165, "umount2": 166,
        "unshare": 272, "setns": 308, "pivot_root": 155, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
        "process_vm_writev": 311, "kexec_load": 246, "init_module": 175, "finit_module": 313,
        "socket": 41, "socketpair": 53, "clone": 56, "clone3": 435}),
    "aarch64": (0xC00000B7, {
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "userfaultfd": 282, "perf_event_open": 241, "bpf": 280, "keyctl": 219,
        "add_key": 217, "request_key": 218, "ptrace": 117, "mount": 40, "umount2": 39,
        "unshare": 97, "setns": 268, "pivot_root": 41, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
        "process_vm_writev": 271, "kexec_load": 104, "init_module": 105, "finit_module": 273,
        "socket": 198, "socketpair": 199, "clone": 220, "clone3": 435}),
}
DENIED = ("io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd",
          "perf_event_open", "bpf", "keyctl", "add_key", "request_key", "ptrace", "mount",
          "umount2", "unshare", "setns", "pivot_root", "open_tree", "move_mount", "fsopen",
          "fsconfig", "fsmount", "fspick", "mount_setattr", "process_vm_writev", "kexec_load",
          "init_module", "finit_module")


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06


def seccomp_program(machine: str | None = None) -> list[tuple[int, int, int, int]]:
    """The filter as ``(code, jt, jf, k)`` tuples: wrong architecture -> kill; x32 calls,
    denied calls, ``socket(AF_VSOCK)`` and ``clone`` with namespace flags -> EPERM;
    ``clone3`` -> ENOSYS (its flags live in memory BPF cannot read; libc then falls back to
    ``clone``, which is checked); everything else allowed."""
    arch, nr = _SYSCALLS[machine or os.uname().machine]
    prog: list[tuple[int, Any, Any, int]] = [
        (_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (_JEQ, 1, 0, arch),
        (_RET, 0, 0, _RET_KILL_PROCESS),
        (_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
        (_JGE, "eperm", 0, 0x40000000),  # x32 ABI numbers
    ]
    for name in DENIED:
        prog.append((_JEQ, "eperm", 0, nr[name]))
    prog += [(_JEQ, "enosys", 0, nr["clone3"]),
             (_JEQ, "sock", 0, nr["socket"]), (_JEQ, "sock", 0, nr["socketpair"]),
             (_JEQ, "clone", 0, nr["clone"]),
             (_RET, 0, 0, _RET_ALLOW)]
    labels = {"sock": len(prog)}  # BPF jumps only forward: targets come last
    prog += [(_LD_W_ABS, 0, 0, 16),  # args[0], low 32 bits (little endian)
             (_JEQ, "eperm", 0, AF_VSOCK), (_RET, 0, 0, _RET_ALLOW)]
    labels["clone"] = len(prog)
    prog += [(_LD_W_ABS, 0, 0, 16), (_JSET, "eperm", 0, _NS_FLAGS), (_RET, 0, 0, _RET_ALLOW)]
    labels["eperm"] = len(prog)
    prog.append((_RET, 0, 0, _RET_ERRNO | _EPERM))
    labels["enosys"] = len(prog)
    prog.append((_RET, 0, 0, _RET_ERRNO | _ENOSYS))
    out = []
    for i, (code, jt, jf, k) in enumerate(prog):
        jt = labels[jt] - i - 1 if isinstance(jt, str) else jt
        jf = labels[jf] - i - 1 if isinstance(jf, str) else jf
        assert 0 <= jt < 256 and 0 <= jf < 256, (i, code, jt, jf)
        out.append((code, jt, jf, k))
    return out


class SeccompFilter:
    """The deny-list, assembled once (in the worker) so that installing it in each job is a
    single ``prctl`` (building it per job cost ~0.4 ms)."""

    def __init__(self) -> None:
        prog = seccomp_program()
        self._arr = (_SockFilter * len(prog))(*[_SockFilter(*ins) for ins in prog])
        self._fprog = _SockFprog(len(prog), self._arr)
        self._addr = ctypes.addressof(self._fprog)

    def install(self) -> None:
        """Install on the calling thread (needs no_new_privs first); inherited by every child
        and impossible to remove."""
        _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, self._addr, 0, 0),
               "prctl(PR_SET_SECCOMP)")


def install_seccomp() -> None:
    """Assemble and install the deny-list (see :class:`SeccompFilter`)."""
    SeccompFilter().install()
