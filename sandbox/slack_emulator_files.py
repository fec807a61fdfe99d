"""Slack's current file upload API, emulated: files.getUploadURLExternal, the POST of the bytes
to the upload URL it returns, and files.completeUploadExternal (what slack_sdk's
`files_upload_v2` calls, in that order).

Completing an upload with a `channel_id` shares the file there the way Slack does: a message
from the uploader whose text is the `initial_comment` and which carries the file (in a thread
when `thread_ts` is given). The channel must be one the bot is in (`not_in_channel` otherwise,
`channel_not_found` for an unknown one). Every file is kept with its content, title, channel
and comment for tests and the console.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.slack_emulator_models import BOT_USER_ID, EmuMessage
from sandbox.slack_emulator_state import Answer, Params, err, json_param, text_param

MAX_FILE_BYTES = 1024 * 1024 * 1024  # Slack's 1 GB
_INT = re.compile(r"^\d+$")
PREVIEW_LINES = 5  # what Slack shows of a text file in the channel


@dataclass
class EmuFile:
    id: str
    filename: str
    length: int  # as announced by files.getUploadURLExternal
    content: bytes | None = None  # None until the bytes were POSTed to the upload URL
    title: str | None = None
    channel: str | None = None
    initial_comment: str | None = None
    thread_ts: str | None = None
    completed: bool = False
    user: str = BOT_USER_ID

    @property
    def text(self) -> str:
        return (self.content or b"").decode("utf-8", errors="replace")

    def to_slack(self) -> dict[str, Any]:
        """The `file` object of files.completeUploadExternal's answer (and of a message)."""
        return {
            "id": self.id,
            "name": self.filename,
            "title": self.title or self.filename,
            "mimetype": "text/plain",
            "filetype": "text",
            "size": len(self.content or b""),
            "user": self.user,
            "channels": [self.channel] if self.channel else [],
            "lines": self.text.count("\n") + (0 if self.text.endswith("\n") else 1),
            "preview": "\n".join(self.text.split("\n")[:PREVIEW_LINES]),
        }


class FileStore:
    """The uploads of one emulated workspace (see the module doc)."""

    def __init__(self, add_message: Callable[[EmuMessage], None]) -> None:
        self.files: dict[str, EmuFile] = {}
        self.upload_base = "http://127.0.0.1/upload"  # the emulator sets its own at start
        self._add_message = add_message
        self._ids = itertools.count(1)

    def get_upload_url(self, params: Params) -> Answer:
        filename = text_param(params, "filename")
        length = params.get("length")
        if not filename:
            return err("invalid_arguments", detail="filename is required")
        if isinstance(length, str) and _INT.match(length):
            length = int(length)
        if not isinstance(length, int) or length <= 0:
            return err("invalid_arguments", detail="length must be a positive integer")
        if length > MAX_FILE_BYTES:
            return err("file_too_large")
        file = EmuFile(id=f"F0SANDBOX{next(self._ids):04d}", filename=filename, length=length)
        self.files[file.id] = file
        return {"ok": True, "upload_url": f"{self.upload_base}/{file.id}", "file_id": file.id}

    def receive(self, file_id: str, data: bytes) -> tuple[int, str]:
        """The POST to an upload URL: (HTTP status, body) as Slack's upload host answers."""
        file = self.files.get(file_id)
        if file is None or file.completed:
            return 404, "Not Found"
        file.content = data
        return 200, f"OK - {len(data)}"

    def complete(
        self,
        params: Params,
        resolve: Callable[[str | None], Any],
        next_ts: Callable[[], str],
        find_message: Callable[[str, str], EmuMessage | None],
    ) -> Answer:
        wanted = json_param(params, "files")
        files = self._uploaded(wanted)
        if isinstance(files, dict):
            return files
        channel = None
        channel_ref = text_param(params, "channel_id")
        if channel_ref is not None:
            channel = resolve(channel_ref)
            if channel is None:
                return err("channel_not_found")
            if BOT_USER_ID not in channel.members:
                return err("not_in_channel")
        thread_ts = text_param(params, "thread_ts")
        if thread_ts is not None and (
            channel is None or find_message(channel.id, thread_ts) is None
        ):
            return err("invalid_thread_ts")
        comment = text_param(params, "initial_comment")
        for item, file in zip(wanted, files, strict=True):
            file.title = str(item.get("title") or file.filename)
            file.completed = True
            file.initial_comment = comment
            file.thread_ts = thread_ts
            file.channel = channel.id if channel is not None else None
        if channel is not None:
            message = EmuMessage(
                channel.id,
                next_ts(),
                comment or "",
                None,
                thread_ts,
                via="files.completeUploadExternal",
                files=[f.to_slack() for f in files],
            )
            self._add_message(message)
        return {"ok": True, "files": [{"id": f.id, "title": f.title} for f in files]}

    def _uploaded(self, wanted: Any) -> list[EmuFile] | Answer:
        """The files `wanted` names, each uploaded and not yet completed, or Slack's error."""
        if not isinstance(wanted, list) or not wanted:
            return err("invalid_arguments", detail="files must be a non-empty JSON array")
        files: list[EmuFile] = []
        for item in wanted:
            file = self.files.get(str(item.get("id"))) if isinstance(item, dict) else None
            if file is None or file.completed:
                return err("file_not_found")
            if file.content is None:
                return err("file_upload_not_completed")  # the bytes never arrived
            files.append(file)
        return files
