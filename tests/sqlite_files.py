"""What an adversary reads from copies of a SQLite database's files: every state the WAL
can rebuild, commit by commit, and the pages on the free list."""

import sqlite3
import struct
from collections.abc import Iterator
from pathlib import Path

WAL_HEADER, FRAME_HEADER = 32, 24


def _pages(image: bytes, size: int) -> list[bytes]:
    return [image[i : i + size] for i in range(0, len(image), size)]


def backfilled(shm: bytes) -> int:
    """How many WAL frames a checkpoint has already copied into the main file (nBackfill in
    the wal-index's checkpoint information, native byte order)."""
    return struct.unpack("=I", shm[96:100])[0] if len(shm) >= 100 else 0


def replay(main: bytes, wal: bytes, shm: bytes) -> Iterator[bytes]:
    """The database as it stood after each commit the files can rebuild: the main file with
    the frames a checkpoint has already copied into it (reapplied: a copy taken while the
    file is being written is not always whole), then each later commit of the WAL's current
    generation (its salts), frames applied in order."""
    if len(wal) < WAL_HEADER:
        yield main
        return
    page_size = struct.unpack(">I", wal[8:12])[0]
    salts = wal[16:24]
    pages = _pages(main, page_size)
    size = len(pages)
    copied = backfilled(shm)
    offset, frame = WAL_HEADER, 0
    if not copied:
        yield main
    while offset + FRAME_HEADER + page_size <= len(wal):
        number, commit_size = struct.unpack(">II", wal[offset : offset + 8])
        if wal[offset + 8 : offset + 16] != salts:
            break
        frame += 1
        while len(pages) < number:
            pages.append(bytes(page_size))
        pages[number - 1] = wal[offset + FRAME_HEADER : offset + FRAME_HEADER + page_size]
        offset += FRAME_HEADER + page_size
        size = commit_size or size
        if commit_size and frame >= copied:
            yield b"".join(pages[:size])


def query(image: bytes, folder: Path, sql: str) -> list[tuple]:
    """Run a query on a database image (written to `folder`, opened read-only)."""
    path = folder / "state.db"
    path.write_bytes(image)
    connection = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def free_pages(image: bytes) -> list[tuple[bytes, int]]:
    """The pages on the database's free list, each with how many of its first bytes are the
    list itself (a trunk page's pointers; nothing on a leaf): the rest is old content, if any."""
    page_size = struct.unpack(">H", image[16:18])[0] or 65536
    pages = _pages(image, page_size)
    trunk = struct.unpack(">I", image[32:36])[0]
    found = []
    while trunk:
        page = pages[trunk - 1]
        following, leaves = struct.unpack(">II", page[:8])
        found.append((page, 8 + 4 * leaves))
        for index in range(leaves):
            leaf = struct.unpack(">I", page[8 + 4 * index : 12 + 4 * index])[0]
            found.append((pages[leaf - 1], 0))
        trunk = following
    return found
