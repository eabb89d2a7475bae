"""Handlers that misbehave on purpose, loaded into real workers with CDR_PLUGINS.

They take over plain text: a file starting with LOOP spins forever, ALLOC
allocates without bound, CRASH kills its own process,
RAISE throws, NET tries to reach a loopback port; anything else is handled like ordinary text.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from cdr.handler import Context, Handler, Rebuilt, register
from cdr.model import Detection, Threat


@register
class MisbehavingText(Handler):
    family = "text"
    mime_types = ("text/plain",)

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        return []

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        head = src.read_bytes()[:5]
        if head.startswith(b"LOOP"):
            while True:  # never checks ctx.check_time(): only the parent's timeout can stop it
                pass
        if head.startswith(b"ALLOC"):
            hoard = []
            while True:
                hoard.append(bytearray(50 * 1024 * 1024))
        if head.startswith(b"CRASH"):
            os._exit(139)
        if head.startswith(b"RAISE"):
            raise KeyError("boom")
        if head.startswith(b"NET"):  # "NET <port>": can this worker reach a listener on loopback?
            import socket

            port = int(src.read_bytes().split()[1])
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                dst.write_bytes(b"connected")
            except OSError as exc:
                dst.write_bytes(f"isolated: {exc}".encode())
            return Rebuilt()
        shutil.copyfile(src, dst)
        return Rebuilt()

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        return path.read_text("utf-8", "replace")
