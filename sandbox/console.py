"""The sandbox console (README.md, "The sandbox"): a terminal Slack in front of the real bot.

Each console line becomes what Slack would send — a signed slash command or button click to the
bot's HTTP endpoint, or a signed SNS notification — and everything the bot then does in Slack
(messages, edits, thread replies, ephemeral replies) is printed as a person would read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from botocore.exceptions import ClientError

from approvals.rollout import RolloutSettings
from bot.logs import configure_logging
from bot.wiring import Overrides
from core.settings import LogFormat
from sandbox.outage_world import bot_health_clients
from sandbox.slack_emulator_models import BOT_USER_ID, EmulatorEvent, EmuMessage, EventKind
from sandbox.terminal import mrkdwn, render_blocks, render_message
from sandbox.world import USERS, Reply, SandboxWorld, buttons_of

# A line waits until what it caused has settled — the bot's requests in flight answered, its
# executions and outbox writes done, then no Slack call for a moment — for at most SETTLE_MAX
# seconds; whatever comes after that is printed as it arrives, marked "… later".
SETTLE_MAX = 15.0
IN_CHANNEL_MESSAGES = 3  # `:in CHANNEL` shows this many of the channel's newest messages…
IN_CHANNEL_LINES = 6  # …each cut to this many lines

CONSOLE_HELP = """\
Console lines:
  /dhanam …                 run a command as the current user, in the current channel
  :as NAME                  switch user: alice (may request), bob, carol (approvers), dave
  :in CHANNEL               switch channel: #ops #deploys #alerts #incidents #oncall
  :click LABEL              press the button LABEL (or number N) on the newest message with one
  :alarm NAME ALARM|OK      CloudWatch moves alarm NAME to that state and notifies through SNS
  :wait SECONDS             let background work progress
  :task-fails TASK          the service task TASK (e.g. migrate) exits 1 from now on
  :task-ok TASK             …or exits 0 again (the default)
  :break SOURCE             break a sev1 checklist source: dns cloudfront rds ecs logs health dr
  :help                     this text
  :quit                     leave"""


class ConsoleError(Exception):
    """A console line that could not run; the message says why."""


@dataclass
class Console:
    world: SandboxWorld
    out: TextIO
    user: str = "alice"
    channel: str = "C0OPS"

    bold: bool = False  # headers and *bold* in ANSI bold (the output is a terminal)

    def __post_init__(self) -> None:
        self._events: asyncio.Queue[EmulatorEvent] = self.world.slack.subscribe()
        self.quit = False
        self._shown: dict[tuple[str, str], list[str]] = {}  # last rendering of each message
        self._later_in: str | None = None  # the channel the last "… later" line named

    @property
    def prompt(self) -> str:
        return f"{self.user} in #{self.world.channel_name(self.channel)}> "

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    async def run_line(self, line: str) -> bool:
        """Run one console line; False when it could not run (the reason is printed)."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        self.show_later()  # what background work did since the last line settled
        self._later_in = None
        try:
            await self._dispatch(line)
        except ConsoleError as exc:
            await self.flush()
            self.say(f"! {exc}")
            return False
        await self.flush()
        return True

    async def _dispatch(self, line: str) -> None:  # noqa: PLR0912 - a branch per console line
        slash = self.world.config.slack.command
        if line == slash or line.startswith(slash + " "):
            reply = await self.world.slash(
                line[len(slash) :].strip(), user=self.user, channel=self.channel
            )
            self._show_reply(reply)
            return
        if line.startswith("/"):
            word = line.split(maxsplit=1)[0]
            raise ConsoleError(f"unknown slash command {word} — try {slash} help")
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word == ":as":
            if rest not in USERS:
                raise ConsoleError(f'unknown user "{rest}" — known: {", ".join(USERS)}')
            self.user = rest
        elif word == ":in":
            self.channel = self._channel(rest)
            self._show_newest(self.channel)
        elif word == ":click":
            await self._click(rest)
        elif word == ":alarm":
            await self._alarm(rest)
        elif word == ":wait":
            await self._wait(rest)
        elif word in (":task-fails", ":task-ok"):
            self._task_outcome(rest, fails=word == ":task-fails")
        elif word == ":break":
            await self._break(rest)
        elif word == ":help":
            self.say(CONSOLE_HELP)
        elif word == ":quit":
            self.quit = True
        else:
            raise ConsoleError(f'unknown console line "{word}" — type :help')

    async def _break(self, source: str) -> None:
        try:
            done = await self.world.outage.break_source(source, bot_health_clients(self.world.apps))
        except (ValueError, RuntimeError) as exc:
            raise ConsoleError(str(exc)) from exc
        self.say(f"{source} broken: {done}")

    def _task_outcome(self, name: str, *, fails: bool) -> None:
        runner = self.world.tasks
        commands = {
            tuple(task.command)
            for svc in self.world.config.services.values()
            for task_name, task in svc.tasks.items()
            if task_name == name
        }
        if runner is None or not commands:
            known = sorted({t for s in self.world.config.services.values() for t in s.tasks})
            raise ConsoleError(f'unknown task "{name}" — known: {", ".join(known) or "none"}')
        for command in commands:
            (runner.failing.add if fails else runner.failing.discard)(command)
        self.say(f"{name} now {'fails (exit code 1)' if fails else 'succeeds (exit code 0)'}")

    def _channel(self, ref: str) -> str:
        name = ref.lstrip("#")
        channels = self.world.slack.world.channels
        if name in channels:
            return name
        found = self.world.slack.channel_by_name(name)
        if found is None:
            # A channel the bot created meanwhile (inc-YYYYMMDD-<slug>): part of its name will do.
            partial = [c for c in channels.values() if name and name in c.name]
            found = partial[0] if len(partial) == 1 else None
        if found is None:
            known = ", ".join("#" + c.name for c in channels.values())
            raise ConsoleError(f'unknown channel "{ref}" — known: {known}')
        return found.id

    async def _click(self, label: str) -> None:
        if not label:
            raise ConsoleError("which button? :click LABEL or :click N")
        message = self.world.newest_with_buttons(self.user)
        if message is None:
            raise ConsoleError("no message with buttons to click")
        buttons = buttons_of(message.blocks or [])
        if label.isdigit():
            index = int(label) - 1
            if not 0 <= index < len(buttons):
                raise ConsoleError(f"there are {len(buttons)} buttons on the newest message")
            button = buttons[index]
        else:
            matches = [b for b in buttons if b.label.lower() == label.lower()]
            if not matches:
                known = ", ".join(b.label for b in buttons)
                raise ConsoleError(f'no button "{label}" on the newest message — buttons: {known}')
            button = matches[0]
        if button.confirm:
            title = str(button.confirm.get("title", {}).get("text", ""))
            confirm = str(button.confirm.get("confirm", {}).get("text", "Confirm"))
            self.say(f"  (confirm dialog “{title}” → {confirm})")
        self.say(f"  {self.user} pressed [{button.label}]")
        self._show_reply(await self.world.click(message, button, user=self.user))

    async def _alarm(self, rest: str) -> None:
        parts = rest.split()
        if len(parts) != 2 or parts[1].upper() not in ("ALARM", "OK"):
            raise ConsoleError("usage: :alarm NAME ALARM|OK")
        if self.world.world is None:
            raise ConsoleError("this sandbox runs without AWS")
        name, state = parts[0], parts[1].upper()
        if name not in self.world.world.alarm_names:
            raise ConsoleError(
                f'unknown alarm "{name}" — known: {", ".join(self.world.world.alarm_names)}'
            )
        try:
            reply = await self.world.alarm(name, state)
        except ClientError as exc:
            raise ConsoleError(f"CloudWatch refused: {exc}") from None
        self.say(f"  CloudWatch: {name} → {state}; SNS delivered to the bot: HTTP {reply.status}")
        await self.world.settle_alarms()  # the alarm's writes are paced: show them all
        if reply.status >= 400 and isinstance(reply.body, dict):
            self.say(f"  bot answered: {reply.body.get('message', reply.body)}")

    async def _wait(self, rest: str) -> None:
        try:
            seconds = float(rest)
        except ValueError:
            raise ConsoleError("usage: :wait SECONDS") from None
        if not 0 <= seconds <= 600:
            raise ConsoleError(":wait takes 0 to 600 seconds")
        # Background work shows up while the console waits, marked as such.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0:
            try:
                event = await asyncio.wait_for(self._events.get(), remaining)
            except TimeoutError:
                break
            self._show_event(event, later=True)

    def _show_newest(self, channel: str) -> None:
        """Entering a channel: its newest few messages, as Slack opens it at the bottom."""
        names = self.world.names()
        where = "#" + names.get(channel, channel)
        history = self.world.slack.world.history.get(channel, [])
        newest = [m for m in history if not m.deleted and not m.is_reply][-IN_CHANNEL_MESSAGES:]
        if not newest:
            self.say(f"  ({where} has no messages yet)")
            return
        count = "the newest message" if len(newest) == 1 else f"the {len(newest)} newest messages"
        self.say(f"  {where}, {count}:")
        for message in newest:
            kind = EventKind.message_updated if message.edited else EventKind.message_posted
            lines = self._message(message, kind, names, where).splitlines()
            if len(lines) > IN_CHANNEL_LINES + 1:
                lines = [*lines[: IN_CHANNEL_LINES + 1], "│ …"]
            self.say("\n".join(lines))

    def _show_reply(self, reply: Reply) -> None:
        if reply.status != 200:
            message = reply.body.get("message") if isinstance(reply.body, dict) else reply.body
            raise ConsoleError(f"the bot answered HTTP {reply.status}: {message}")
        if reply.text or reply.blocks:
            public = (
                isinstance(reply.body, dict) and reply.body.get("response_type") == "in_channel"
            )
            self.say(
                render_message(
                    author="dhanam",
                    text=reply.text,
                    blocks=reply.blocks,
                    names=self.world.names(),
                    where="#" + self.world.channel_name(self.channel),
                    kind="" if public else f"only visible to {self.user}",
                    bold=self.bold,
                )
            )

    async def flush(self) -> None:
        """Wait (bounded) until what the line caused has settled, then print it."""
        settled = await self.world.settle_within(SETTLE_MAX)
        self.show_pending()
        if not settled:
            self.say(
                f"  (still working after {SETTLE_MAX:g} s — what it does next is printed "
                "as it comes, marked “later”)"
            )

    def show_pending(self, *, later: bool = False) -> None:
        """Print every event waiting in the queue."""
        while not self._events.empty():
            self._show_event(self._events.get_nowait(), later=later)

    def show_later(self) -> None:
        """Print what background work did after the last line settled, marked as such."""
        self.show_pending(later=True)

    async def next_event(self) -> EmulatorEvent:
        return await self._events.get()

    def show_event(self, event: EmulatorEvent, *, later: bool = False) -> None:
        self._show_event(event, later=later)

    def _show_event(self, event: EmulatorEvent, *, later: bool = False) -> None:
        names = self.world.names()
        where = "#" + names.get(event.channel or "", event.channel or "?")
        if later and where != self._later_in:
            self.say(f"… later, in {where}:" if event.channel else "… later:")
            self._later_in = where
        message = event.message
        if event.kind in (EventKind.message_posted, EventKind.message_updated, EventKind.ephemeral):
            assert message is not None
            rendered = self._message(message, event.kind, names, where).splitlines()
            key = (message.channel, message.ts)
            before = self._shown.get(key)
            self._shown[key] = rendered
            if event.kind is EventKind.message_updated and before is not None:
                # In Slack the card changes in place: show what changed, not the card again.
                changed = [line for line in rendered[1:] if line not in before]
                self.say("\n".join([rendered[0], *(changed or ["│ (no visible change)"])]))
            else:
                self.say("\n".join(rendered))
        else:
            self._show_notice(event, names, where)

    def _show_notice(self, event: EmulatorEvent, names: dict[str, str], where: str) -> None:
        """What is not a message: channels, members, topics, pins, reactions, views."""
        if event.kind is EventKind.channel_created:
            self.say(f"+ channel {where} created")
        elif event.kind is EventKind.member_joined:
            self.say(f"+ @{names.get(event.user or '', event.user or '?')} joined {where}")
        elif event.kind is EventKind.topic_set:
            topic = mrkdwn(str(event.data.get("topic", "")), names, bold=self.bold)
            self.say(f"+ topic of {where}: {topic}")
        elif event.kind is EventKind.pinned:
            self.say(f"+ message pinned in {where}")
        elif event.kind is EventKind.message_deleted:
            self.say(f"- a message was deleted in {where}")
        elif event.kind is EventKind.reaction_added:
            self.say(f"+ :{event.data.get('name', '')}: reaction on a message in {where}")
        elif event.kind in (EventKind.view_published, EventKind.view_opened):
            view = event.data.get("view") or {}
            if event.kind is EventKind.view_published:
                self.say(f"Home tab of @{names.get(event.user or '', '?')} updated:")
            else:
                title = render_blocks([{"type": "header", "text": view.get("title")}], names)
                self.say(f"A dialog opened: {' '.join(title)}")
            blocks = render_blocks(view.get("blocks", []), names, bold=self.bold)
            self.say("\n".join("│ " + line for line in blocks))

    def _message(
        self, message: EmuMessage, kind: EventKind, names: dict[str, str], where: str
    ) -> str:
        author = names.get(message.user, message.user) if message.user != BOT_USER_ID else "dhanam"
        label = ""
        if kind is EventKind.message_updated:
            label = "edited"
        elif message.ephemeral_to is not None:
            label = f"only visible to {names.get(message.ephemeral_to, message.ephemeral_to)}"
        return render_message(
            author=author,
            text=message.text,
            blocks=message.blocks,
            names=names,
            where=where,
            kind=label,
            in_thread=message.is_reply,
            bold=self.bold,
            files=message.files,
        )


async def _stdin_lines() -> AsyncIterator[str]:
    """Lines piped into the console, read as they come (a pipe may pause between lines)."""
    while line := await asyncio.to_thread(sys.stdin.readline):
        yield line


async def _script_lines(lines: Iterable[str]) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def _run(lines: Iterable[str] | None, out: TextIO, *, echo: bool) -> int:
    world = SandboxWorld(
        log_format=LogFormat.CONSOLE,
        advance_rollouts_after=3.0,
        task_seconds=2.0,  # a one-off task runs 2 s, writing its log as it goes
        before_deploy={"api": "migrate"},  # deploys of api run the migration first
        dhanam_api=True,  # the API's health endpoints, for /dhanam status
        # Faster than production so a deploy completes and bakes while you watch.
        overrides=Overrides(
            rollouts=RolloutSettings(
                poll=timedelta(seconds=1), timeout=timedelta(minutes=5), bake=timedelta(minutes=2)
            )
        ),
    )
    print("Starting the sandbox: Redis, AWS (moto, seeded), the Slack emulator, the bot…", file=out)
    await world.start()
    try:
        console = Console(world, out, bold=_is_terminal(out))
        aws = world.aws_endpoint_url or "off"
        console.say(
            f"Ready. Bot {world.bot_url} · Redis via {world.redis_kind} · AWS {aws} · "
            f"Slack emulator {world.slack.base_url}\nYou are alice in #ops. Type :help for "
            f"console lines, {world.config.slack.command} help for commands, :quit to leave."
        )
        await console.flush()
        if lines is None and _is_terminal(sys.stdin):
            await _interactive(console)
            return 0
        # A script, or lines piped in: each is echoed after the prompt, as if typed.
        source = _script_lines(lines) if lines is not None else _stdin_lines()
        failures = 0
        number = 0
        async for line in source:
            number += 1
            if echo and line.strip() and not line.strip().startswith("#"):
                console.show_later()  # background work from before this line, above its echo
                console.say(f"\n{console.prompt}{line.strip()}")
            if not await console.run_line(line):
                failures += 1
                console.say(f"! line {number} failed")
            if console.quit:
                break
        return 1 if failures else 0
    finally:
        await world.stop()


async def _interactive(console: Console) -> None:
    """A person at the keyboard: background work is printed as it comes, above the prompt."""
    while not console.quit:
        watcher = asyncio.create_task(_watch(console))
        try:
            line = await asyncio.to_thread(input, console.prompt)
        except EOFError:
            break
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await console.run_line(line)


async def _watch(console: Console) -> None:
    """While the prompt waits for a line: print later events, then the prompt again."""
    while True:
        event = await console.next_event()
        console.out.write("\r\x1b[K")  # the prompt's line, cleared
        console.show_event(event, later=True)
        console.show_later()
        console.out.write(console.prompt)
        console.out.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def run_sandbox(script: Path | None = None, out: TextIO | None = None) -> int:
    """`dhanam-bot sandbox [--script FILE]`: exit 0 when every line ran, 1 otherwise."""
    out = out or sys.stdout
    # The bot's own logs would drown the conversation: only warnings and errors, on stderr.
    configure_logging(LogFormat.CONSOLE, "warning")
    lines: list[str] | None = None
    if script is not None:
        try:
            lines = script.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            print(f"dhanam-bot: cannot read {script}: {exc.strerror}", file=sys.stderr)
            return 1
    try:
        return asyncio.run(_run(lines, out, echo=script is not None or not _is_terminal(sys.stdin)))
    except KeyboardInterrupt:
        return 130
