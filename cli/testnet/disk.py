"""A disk of its own for each node's chain store (its data dir's chaindata on a size-limited
tmpfs, as root), so a manifest can fill it to the last byte and free it again: the node must
stop with a clear error and lose nothing, and start again where its last commit left it. The
rest of the data dir (keys, the log, the pool journal) stays on the machine's disk, so the node's
last words reach its log."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

FILLER = ".disk-filler"
"""The file that takes every free byte of a filled disk (LevelDB leaves files it did not name alone)."""
CHUNKS = (1 << 20, 1 << 16, 1 << 12, 1)
"""Write sizes, largest first: each runs until the disk refuses it, so the fill ends at 0 bytes free."""


def why_not() -> str | None:
    if os.geteuid() != 0:
        return "a disk per node (tmpfs) needs root"
    if shutil.which("mount") is None:
        return "a disk per node needs the mount command"
    return None


def give_own_disk(directory: Path, mib: int) -> None:
    """Move `directory` onto a new tmpfs of `mib` MiB mounted at its own path."""
    aside = directory.with_name(directory.name + ".aside")
    directory.rename(aside)
    directory.mkdir()
    _run("mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0700", "tmpfs", str(directory))
    shutil.copytree(aside, directory, dirs_exist_ok=True, symlinks=True)
    shutil.rmtree(aside)


def take_back(directory: Path, keep: bool) -> None:
    """Unmount the tmpfs at `directory`; with `keep`, its files are copied back onto the disk
    below first (the filler left out). Does nothing where nothing is mounted."""
    if not os.path.ismount(directory):
        return
    aside = directory.with_name(directory.name + ".aside")
    if keep:
        shutil.copytree(directory, aside, symlinks=True, ignore=shutil.ignore_patterns(FILLER))
    subprocess.run(["umount", "-l", str(directory)], capture_output=True)
    if keep:
        directory.rmdir()
        aside.rename(directory)


def empty(directory: Path) -> None:
    """Remove everything in `directory` (a mount point stays)."""
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def fill(directory: Path) -> int:
    """Take every free byte of the disk `directory` is on; returns how many were taken."""
    taken = 0
    with open(directory / FILLER, "ab", buffering=0) as filler:
        for size in CHUNKS:
            block = b"\0" * size
            while True:
                try:
                    written = filler.write(block)
                except OSError:
                    break
                taken += written
                if written < size:
                    break
    return taken


def free(directory: Path) -> None:
    (directory / FILLER).unlink(missing_ok=True)


def _run(*args: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip() or f'exit {done.returncode}'}")
