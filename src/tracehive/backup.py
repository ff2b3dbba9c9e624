"""Online backup and restore of a data dir (``tracehive backup`` / ``tracehive restore``).

A backup is one tar file:

- ``manifest.json``: format, version, when, tracehive's version, the schema version, the counts,
  and the size and SHA-256 of every other member;
- ``tracehive.db``: a consistent copy of the database (``storage/sqlite/snapshot.py``);
- ``otlp-journal/applied`` and ``otlp-journal/<n>.seg``: in journal mode, the OTLP requests
  acknowledged but perhaps not yet applied to the database.

What it holds: every write acknowledged before the backup began. A REST write, or an OTLP
request in the default mode, is acknowledged once committed, so the copy (taken after the start)
has it. A journal-mode OTLP request is acknowledged once in the journal: the applied checkpoint is
read first, then the segments from it are opened (an open file keeps its bytes even if the applier
retires it meanwhile) and measured, and only then is the database copied. Whatever the copy lacks
is in those segments, from the checkpoint on; a server started on the restore applies them
again from there (re-applying a span writes the same event: idempotent).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tracehive import __version__
from tracehive.ingest.journal import CHECKPOINT_NAME, SEGMENT_SUFFIX
from tracehive.ingest.journal_records import read_record
from tracehive.storage.sqlite.snapshot import counts, integrity, schema_version, snapshot_into

FORMAT = "tracehive-backup"
VERSION = 1
DATABASE = "tracehive.db"
JOURNAL = "otlp-journal"
MANIFEST = "manifest.json"
_CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or restore that cannot be done; the message is one line for the user."""


@dataclass(frozen=True)
class Summary:
    path: Path
    events: int
    projects: int
    size: int
    journal_segments: int


def _journal_members(data_dir: Path) -> list[tuple[str, IO[bytes], int]]:
    """(name in the archive, open file, bytes to take) for the journal: the checkpoint as read
    now, and every segment from the checkpoint's on, each up to its last whole record."""
    directory = data_dir / JOURNAL
    try:
        checkpoint = (directory / CHECKPOINT_NAME).read_bytes()
    except FileNotFoundError:
        checkpoint = b""
    numbers = sorted(int(p.stem) for p in directory.glob(f"*{SEGMENT_SUFFIX}") if p.stem.isdigit())
    if not numbers:
        return []
    first = int(checkpoint.split()[0]) if checkpoint.split() else 0
    members: list[tuple[str, IO[bytes], int]] = [(f"{JOURNAL}/{CHECKPOINT_NAME}", io.BytesIO(checkpoint), len(checkpoint))]
    for number in numbers:
        if number < first:
            continue
        try:
            handle = open(directory / f"{number:010d}{SEGMENT_SUFFIX}", "rb")  # noqa: SIM115 - closed by the caller
        except FileNotFoundError:
            continue  # retired since the listing: wholly applied, so in the database copy
        data = handle.read()
        offset = 0
        while (found := read_record(data, offset)) is not None:
            offset = found[1]
        handle.seek(0)
        members.append((f"{JOURNAL}/{number:010d}{SEGMENT_SUFFIX}", handle, offset))
    return members


def _sha256(handle: IO[bytes], size: int) -> str:
    digest = hashlib.sha256()
    left = size
    while left > 0:
        chunk = handle.read(min(_CHUNK, left))
        if not chunk:
            raise BackupError("a file shrank while it was being backed up")
        digest.update(chunk)
        left -= len(chunk)
    handle.seek(0)
    return digest.hexdigest()


def create(data_dir: Path, output: Path, *, overwrite: bool = False) -> Summary:
    """Back up the data dir of a running (or stopped) SQLite server into ``output``."""
    database = data_dir / DATABASE
    if not database.is_file():
        raise BackupError(f"no database in {data_dir}")
    if output.exists() and not overwrite:
        raise BackupError(f"{output} exists (pass --force to replace it)")
    if output.exists() and output.is_dir():
        raise BackupError(f"{output} is a directory")
    try:
        staging = Path(tempfile.mkdtemp(prefix=".tracehive-backup-", dir=output.parent))
    except OSError as exc:
        raise BackupError(f"cannot write to {output.parent}: {exc.strerror or exc}") from None
    journal = _journal_members(data_dir)
    try:
        copy = staging / DATABASE
        snapshot_into(database, copy)
        verdict = integrity(copy)
        if verdict != "ok":
            raise BackupError(f"the database copy failed its integrity check: {verdict}")
        events, projects = counts(copy)
        with open(copy, "rb") as db_file:
            members = [(DATABASE, db_file, copy.stat().st_size), *journal]
            files = {name: {"size": size, "sha256": _sha256(handle, size)} for name, handle, size in members}
            manifest = {
                "format": FORMAT, "version": VERSION, "tracehive": __version__,
                "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "schema_version": schema_version(copy), "events": events, "projects": projects, "files": files,
            }
            partial = staging / "backup.tar"
            with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
                _add(tar, MANIFEST, io.BytesIO(json.dumps(manifest, indent=1).encode()), None)
                for name, handle, size in members:
                    _add(tar, name, handle, size)
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, output)
        os.chmod(output, 0o600)  # the data's own permissions (data dirs are 0700)
    except OSError as exc:
        raise BackupError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        for _, handle, _size in journal:
            handle.close()
        shutil.rmtree(staging, ignore_errors=True)
    return Summary(output, events, projects, output.stat().st_size, max(0, len(journal) - 1))


def _add(tar: tarfile.TarFile, name: str, handle: IO[bytes], size: int | None) -> None:
    if size is None:
        size = len(handle.getvalue())  # type: ignore[attr-defined]
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(dt.datetime.now().timestamp())
    tar.addfile(info, _Limited(handle, size))


class _Limited(io.RawIOBase):
    """The first ``size`` bytes of ``handle`` (a segment may grow while it is archived)."""

    def __init__(self, handle: IO[bytes], size: int) -> None:
        self._handle, self._left = handle, size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        data = self._handle.read(n)
        self._left -= len(data)
        return data


def _allowed(name: str) -> bool:
    if name in (MANIFEST, DATABASE, f"{JOURNAL}/{CHECKPOINT_NAME}"):
        return True
    head, _, tail = name.partition("/")
    return head == JOURNAL and tail.endswith(SEGMENT_SUFFIX) and tail[: -len(SEGMENT_SUFFIX)].isdigit() and "/" not in tail


def _manifest(tar: tarfile.TarFile) -> dict[str, Any]:
    try:
        member = tar.getmember(MANIFEST)
        handle = tar.extractfile(member)
        manifest = json.loads(handle.read(1 << 20)) if handle else None
    except (KeyError, ValueError) as exc:
        raise BackupError(f"not a tracehive backup (no readable {MANIFEST}: {exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise BackupError("not a tracehive backup (its manifest is not one)")
    if manifest.get("version") != VERSION:
        raise BackupError(f"backup format version {manifest.get('version')!r} is not {VERSION}: "
                          "restore it with the tracehive that made it")
    return manifest


def restore(archive: Path, data_dir: Path) -> Summary:
    """Check ``archive`` and lay it out as the new data dir ``data_dir`` (absent or empty)."""
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"{data_dir} exists and is not an empty directory: restore into a new one")
    try:
        tar = tarfile.open(archive, "r:")
    except FileNotFoundError:
        raise BackupError(f"{archive} does not exist") from None
    except (tarfile.TarError, OSError) as exc:
        raise BackupError(f"{archive} is not a tracehive backup ({exc})") from None
    parent = data_dir.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tracehive-restore-", dir=parent))
    except OSError as exc:
        raise BackupError(f"cannot create {data_dir}: {exc.strerror or exc}") from None
    try:
        with tar:
            manifest = _manifest(tar)
            expected: dict[str, Any] = manifest["files"]
            seen: set[str] = set()
            for member in tar.getmembers():
                if member.name == MANIFEST:
                    continue
                if not member.isfile() or not _allowed(member.name) or member.name not in expected:
                    raise BackupError(f"the backup holds an unexpected member {member.name!r}")
                _extract(tar, member, staging / member.name, expected[member.name])
                seen.add(member.name)
            missing = sorted(set(expected) - seen)
            if missing:
                raise BackupError(f"the backup lacks {', '.join(missing)}")
        verdict = integrity(staging / DATABASE)
        if verdict != "ok":
            raise BackupError(f"the database in the backup failed its integrity check: {verdict}")
        events, projects = counts(staging / DATABASE)
        os.chmod(staging, 0o700)
        if data_dir.exists():
            data_dir.rmdir()  # empty, checked above
        os.replace(staging, data_dir)
    except tarfile.TarError as exc:
        raise BackupError(f"{archive} is damaged ({exc})") from None
    except OSError as exc:
        raise BackupError(f"cannot restore into {data_dir}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    segments = sum(1 for name in seen if name.endswith(SEGMENT_SUFFIX))
    return Summary(data_dir, events, projects, archive.stat().st_size, segments)


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, expected: Any) -> None:
    """One member, written and checked against the manifest's size and SHA-256."""
    if not isinstance(expected, dict) or member.size != expected.get("size"):
        raise BackupError(f"{member.name} is {member.size} bytes, the manifest says {expected!r}")
    source = tar.extractfile(member)
    if source is None:
        raise BackupError(f"{member.name} cannot be read")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(target, 0o600)
    if digest.hexdigest() != expected.get("sha256"):
        raise BackupError(f"{member.name} does not match its checksum: the backup is damaged")
