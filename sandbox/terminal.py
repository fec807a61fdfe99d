"""Block Kit for a terminal: what a person would read in Slack, as plain lines. Pure functions.

Hand-written: no library renders Block Kit to text. Covers every block Slack has — header
(bold, its case kept), section (text, fields, accessory), context (text and images), divider,
actions, rich_text (sections, lists, quotes, code), image, input, markdown, file, video — and
every interactive element: buttons (numbered in reading order, as ``:click N`` counts them),
checkboxes and radio buttons (one line per option, ☑/☐ and ◉/◯), selects of every kind, overflow
menus, date, time and datetime pickers, text inputs, images (their alt text). Slack's mrkdwn
entities (mentions, channels, dates, links, escapes) are shown as a person reads them.

Lines are wrapped at WIDTH, never inside a URL, an inline code span or a date. A context block's
elements sit side by side, `` · `` between them. A link shows its label
and, once per message, its URL shortened (scheme and ``www.`` dropped, a long path cut to its
first and last parts).
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

WIDTH = 78
URL_MAX = 60  # a shown URL longer than this is shortened
_BOLD_ON, _BOLD_OFF = "\x1b[1m", "\x1b[0m"
_KEEP = "\ue000"  # stands for a space that must not break (inline code, a date) while wrapping
_ENTITY = re.compile(r"<([@#!]?)([^>|]+)(?:\|([^>]*))?>")
_CODE = re.compile(r"`[^`\n]+`")
_BULLET = re.compile(r"^\s*(?:[•◦▪]|\d+\.) ")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~([^~\n]+)~(?![\w~])")
_EMOJI_CODE = re.compile(r":([a-z0-9_+-]+):")
_EMOJI = {
    "alarm_clock": "⏰",
    "arrow_forward": "▶️",
    "arrows_counterclockwise": "🔄",
    "ballot_box_with_check": "☑️",
    "bell": "🔔",
    "clipboard": "📋",
    "construction": "🚧",
    "crown": "👑",
    "dart": "🎯",
    "eyes": "👀",
    "fire": "🔥",
    "gear": "⚙️",
    "grey_question": "❔",
    "heavy_check_mark": "✔️",
    "heavy_multiplication_x": "✖️",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "incoming_envelope": "📨",
    "information_source": "\u2139\ufe0f",
    "large_blue_circle": "🔵",
    "large_green_circle": "🟢",
    "large_orange_circle": "🟠",
    "large_yellow_circle": "🟡",
    "link": "🔗",
    "lock": "🔒",
    "loudspeaker": "📢",
    "mag": "🔍",
    "memo": "📝",
    "no_entry": "⛔",
    "outbox_tray": "📤",
    "pager": "📟",
    "pushpin": "📌",
    "red_circle": "🔴",
    "rocket": "🚀",
    "rotating_light": "🚨",
    "sos": "🆘",
    "stopwatch": "⏱️",
    "tada": "🎉",
    "unlock": "🔓",
    "warning": "⚠️",
    "white_check_mark": "✅",
    "white_circle": "⚪",
    "x": "❌",
    "zap": "⚡",
}


def emoji(name: str) -> str:
    """``:name:`` as the character Slack shows; unknown names stay as typed."""
    return _EMOJI.get(name, f":{name}:")


def short_url(url: str, limit: int = URL_MAX) -> str:
    """A URL as a person would note it: no scheme or ``www.``; when long, the query (or
    fragment) goes, then path segments after the first (``host/first/…/last``), then the end."""
    if url.startswith("mailto:"):
        return url.removeprefix("mailto:")
    shown = re.sub(r"^[a-z][a-z0-9+.-]*://(www\.)?", "", url, flags=re.IGNORECASE).rstrip("/")
    if len(shown) <= limit:
        return shown
    base = re.split(r"[?#]", shown, maxsplit=1)[0]
    shown = base + "?…" if base != shown else base
    host, *parts = base.split("/")
    first, rest = parts[:1], parts[1:]
    dropped = False
    while len(shown) > limit and len(rest) > 1:
        rest.pop(0)
        dropped = True
        shown = "/".join([host, *first, "…", *rest])
    if len(shown) > limit and not dropped and rest:
        shown = "/".join([host, *first, "…", *rest[-1:]])
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


@dataclass
class Renderer:
    """Renders one message: numbers its buttons and shows each URL once, in reading order."""

    names: Mapping[str, str]
    bold_style: bool = False  # ANSI bold (a terminal); else bold text is shown plain
    buttons: int = 0
    urls: set[str] = field(default_factory=set)

    # -- inline text ------------------------------------------------------------------------
    def bold(self, text: str) -> str:
        return f"{_BOLD_ON}{text}{_BOLD_OFF}" if self.bold_style and text else text

    def link(self, url: str, label: str = "") -> str:
        """``label (short url)``; the URL only the first time it appears in the message."""
        label = label.strip()
        bare = short_url(url, limit=10_000)
        if not label or label in (url, bare):
            return short_url(url)
        if url in self.urls:
            return label
        self.urls.add(url)
        return f"{label} ({short_url(url)})"

    def mrkdwn(self, text: str) -> str:
        """Slack's mrkdwn as a person reads it: `<@U0BOB>` -> `@bob`, `*x*` bold, links once."""
        names = self.names

        def entity(match: re.Match[str]) -> str:
            sigil, target, label = match.group(1), match.group(2), match.group(3)
            if sigil == "@":
                return "@" + (label or names.get(target, target))
            if sigil == "#":
                return "#" + (label or names.get(target, target))
            if sigil == "!" and target.startswith("date^"):
                # A date ("21:04 UTC 05 Dec") reads as one thing: never wrapped inside.
                return (label or target).replace(" ", _KEEP)
            if sigil == "!" and target.startswith("subteam^"):
                group = target.split("^")[1]
                return "@" + (label or names.get(group, group))
            if sigil == "!":
                return "@" + (label or target.split("^")[0])
            return self.link(html.unescape(target), html.unescape(label or ""))

        # Inline code is shown as typed (entities aside): no bold, italics or emoji inside it.
        pieces = re.split(r"(`[^`\n]+`)", text)
        out = []
        for i, raw in enumerate(pieces):
            piece = _ENTITY.sub(entity, raw)
            if i % 2 == 0:
                piece = _BOLD.sub(lambda m: self.bold(m.group(1)), piece)
                piece = _STRIKE.sub(r"\1", _ITALIC.sub(r"\1", piece))
                piece = _EMOJI_CODE.sub(lambda m: emoji(m.group(1)), piece)
            out.append(piece)
        return html.unescape("".join(out))

    def text(self, obj: Any) -> str:
        """A text object: mrkdwn rendered, plain_text as is (its ``:emoji:`` shown)."""
        if not isinstance(obj, dict):
            return ""
        raw = str(obj.get("text", ""))
        if obj.get("type") == "mrkdwn":
            return self.mrkdwn(raw)
        raw = html.unescape(raw)
        if obj.get("emoji", True):
            raw = _EMOJI_CODE.sub(lambda m: emoji(m.group(1)), raw)
        return raw

    # -- elements -----------------------------------------------------------------------------
    def button(self, element: dict[str, Any]) -> str:
        self.buttons += 1
        mark = "!" if element.get("style") == "danger" else ""
        opens = " ↗" if element.get("url") else ""
        return f"[{self.buttons} {self.text(element.get('text'))}{mark}{opens}]"

    def _option(self, option: Any) -> str:
        return self.text(option.get("text")) if isinstance(option, dict) else ""

    def _options(self, element: dict[str, Any]) -> list[dict[str, Any]]:
        options = list(element.get("options") or [])
        for group in element.get("option_groups") or []:
            options.extend(group.get("options") or [])
        return [o for o in options if isinstance(o, dict)]

    def _chosen(self, element: dict[str, Any]) -> list[str]:
        """What a select shows as picked (initial_*), by label or name."""
        if element.get("initial_option"):
            return [self._option(element["initial_option"])]
        if element.get("initial_options"):
            return [self._option(o) for o in element["initial_options"]]
        for key, sigil in (
            ("initial_user", "@"),
            ("initial_conversation", "#"),
            ("initial_channel", "#"),
        ):
            if element.get(key):
                return [sigil + self.names.get(str(element[key]), str(element[key]))]
        for key, sigil in (
            ("initial_users", "@"),
            ("initial_conversations", "#"),
            ("initial_channels", "#"),
        ):
            if element.get(key):
                return [sigil + self.names.get(str(v), str(v)) for v in element[key]]
        return []

    def select(self, element: dict[str, Any]) -> str:
        """A select as Slack shows it closed — the pick or the placeholder, and ▾ — with its
        options after it (a terminal cannot open the menu)."""
        chosen = self._chosen(element)
        shown = ", ".join(chosen) or self.text(element.get("placeholder")) or "Select"
        options = [self._option(o) for o in self._options(element)]
        listed = f" {' | '.join(options)}" if options else ""
        return f"[{shown} ▾{listed}]"

    def overflow(self, element: dict[str, Any]) -> str:
        options = [self._option(o) for o in self._options(element)]
        return f"[⋯ {' | '.join(options)}]" if options else "[⋯]"

    def picker(self, element: dict[str, Any]) -> str:
        kind = element.get("type")
        if kind == "datepicker":
            value, icon = element.get("initial_date"), "📅"
        elif kind == "timepicker":
            value, icon = element.get("initial_time"), "🕒"
        else:  # datetimepicker: a Unix timestamp
            value, icon = element.get("initial_date_time"), "📅"
        shown = str(value) if value else self.text(element.get("placeholder")) or "Select"
        return f"[{icon} {shown}]"

    def choices(self, element: dict[str, Any]) -> list[str]:
        """Checkboxes (☑/☐) and radio buttons (◉/◯): one line per option, as Slack lists them."""
        radio = element.get("type") == "radio_buttons"
        initial = element.get("initial_options") or []
        if radio and element.get("initial_option"):
            initial = [element["initial_option"]]
        picked = {str(o.get("value")) for o in initial if isinstance(o, dict)}
        on, off = ("◉", "◯") if radio else ("☑", "☐")
        lines: list[str] = []
        for option in self._options(element):
            mark = on if str(option.get("value")) in picked else off
            lines.extend(wrap(f"{mark} {self._option(option)}", hanging="  "))
            if option.get("description"):
                lines.extend(wrap(self.text(option["description"]), "    "))
        return lines

    def element(self, element: Any) -> list[str]:
        """One interactive or context element: one inline piece, or lines (checkboxes)."""
        if not isinstance(element, dict):
            return []
        kind = str(element.get("type", ""))
        if kind in ("checkboxes", "radio_buttons"):
            return self.choices(element)
        if kind.endswith("_select"):
            return [self.select(element)]
        if kind in ("mrkdwn", "plain_text"):
            return [self.text(element)]
        return [self._inline_element(kind, element)]

    def _inline_element(self, kind: str, element: dict[str, Any]) -> str:
        if kind in ("button", "workflow_button"):
            return self.button(element)
        if kind == "overflow":
            return self.overflow(element)
        if kind in ("datepicker", "timepicker", "datetimepicker"):
            return self.picker(element)
        if kind == "image":
            return f"[image: {element.get('alt_text', '')}]"
        if kind.endswith("_input"):
            shown = self.text(element.get("placeholder")) or str(element.get("initial_value", ""))
            return f"[✎ {shown}]"
        return f"[{kind}]"

    def inline_row(self, elements: list[Any], indent: str = "") -> list[str]:
        """Elements side by side (buttons, selects…); line-shaped ones (checkboxes) apart."""
        lines: list[str] = []
        row: list[str] = []
        for el in elements:
            rendered = self.element(el)
            if isinstance(el, dict) and el.get("type") in ("checkboxes", "radio_buttons"):
                if row:
                    lines.extend(wrap(" ".join(row), indent))
                    row = []
                lines.extend(indent + line for line in rendered)
            else:
                row.extend(rendered)
        if row:
            lines.extend(wrap(" ".join(row), indent))
        return lines

    # -- rich text ----------------------------------------------------------------------------
    def rich_inline(self, elements: list[dict[str, Any]]) -> str:
        parts = []
        for el in elements:
            kind = el.get("type")
            style = el.get("style") or {}
            if kind == "text":
                piece = str(el.get("text", ""))
            elif kind == "link":
                piece = self.link(str(el.get("url", "")), str(el.get("text") or ""))
            elif kind == "user":
                uid = str(el.get("user_id", ""))
                piece = "@" + self.names.get(uid, uid)
            elif kind == "usergroup":
                gid = str(el.get("usergroup_id", ""))
                piece = "@" + self.names.get(gid, gid)
            elif kind == "channel":
                cid = str(el.get("channel_id", ""))
                piece = "#" + self.names.get(cid, cid)
            elif kind == "broadcast":
                piece = "@" + str(el.get("range", "here"))
            elif kind == "emoji":
                piece = _unicode(str(el.get("unicode", ""))) or emoji(str(el.get("name", "")))
            elif kind == "date":
                shown = str(el.get("fallback") or el.get("format") or el.get("timestamp", ""))
                piece = shown.replace(" ", _KEEP)  # never wrapped inside, as in mrkdwn
            else:
                piece = str(el.get("text", ""))
            if style.get("code"):
                piece = f"`{piece}`"
            if style.get("bold"):
                piece = self.bold(piece)
            parts.append(piece)
        return "".join(parts)

    def rich_text(self, block: dict[str, Any]) -> list[str]:
        out: list[str] = []
        for element in block.get("elements", []):
            kind = element.get("type")
            items = element.get("elements", [])
            if kind == "rich_text_list":
                indent = "  " * int(element.get("indent", 0) or 0)
                start = int(element.get("offset", 0) or 0)
                for n, item in enumerate(items, start=start + 1):
                    mark = f"{n}." if element.get("style") == "ordered" else "•"
                    text = self.rich_inline(item.get("elements", []))
                    out.extend(wrap(f"{mark} {text}", indent, hanging=" " * (len(mark) + 1)))
            elif kind == "rich_text_preformatted":
                # Code as typed: no wrapping, in a box-free indent.
                text = self.rich_inline(items).replace("`", "")
                out.extend("    " + line for line in text.splitlines() or [""])
            elif kind == "rich_text_quote":
                out.extend(wrap(self.rich_inline(items), "┃ "))
            else:
                out.extend(wrap(self.rich_inline(items)))
        return out

    # -- blocks -------------------------------------------------------------------------------
    def blocks(self, blocks: list[dict[str, Any]]) -> list[str]:
        lines: list[str] = []
        for block in blocks:
            lines.extend(self.block(block))
        # A kept space that reached a line unwrapped (a button's label, say) is a space again.
        return [line.replace(_KEEP, " ") for line in lines]

    def block(self, block: dict[str, Any]) -> list[str]:
        kind = str(block.get("type"))
        render: Callable[[dict[str, Any]], list[str]] | None = {
            "header": self._header,
            "divider": lambda _b: ["─" * 40],
            "section": self._section,
            "context": self._context,
            "actions": lambda b: self.inline_row(list(b.get("elements", []))),
            "rich_text": self.rich_text,
            "image": self._image,
            "input": self._input,
            "markdown": lambda b: wrap(self.mrkdwn(str(b.get("text", "")))),
            "file": lambda b: [f"[file: {b.get('external_id', '')}]"],
            "video": lambda b: [f"[video: {self.text(b.get('title')) or b.get('alt_text', '')}]"],
        }.get(kind)
        return render(block) if render is not None else [f"[{kind} block]"]

    def _header(self, block: dict[str, Any]) -> list[str]:
        # Slack shows a header large and bold, its text as written (never upper-cased).
        return [self.bold(line) for line in wrap(self.text(block.get("text")))]

    def _section(self, block: dict[str, Any]) -> list[str]:
        lines: list[str] = []
        if block.get("text"):
            lines.extend(wrap(self.text(block["text"])))
        for f in block.get("fields", []):
            # A field is "label\nvalue": one line reads better in a terminal.
            lines.extend(wrap(" ".join(self.text(f).splitlines()), "  ", hanging="  "))
        accessory = block.get("accessory")
        if isinstance(accessory, dict):
            lines.extend(self.inline_row([accessory], "  "))
        return lines

    def _context(self, block: dict[str, Any]) -> list[str]:
        pieces = [p for el in block.get("elements", []) for p in self.element(el)]
        # Slack shows a context's elements side by side; a middle dot keeps them apart.
        return wrap(" · ".join(p for p in pieces if p), "  ")

    def _image(self, block: dict[str, Any]) -> list[str]:
        title = self.text(block.get("title"))
        return [f"[image: {block.get('alt_text', '')}]" + (f" {title}" if title else "")]

    def _input(self, block: dict[str, Any]) -> list[str]:
        hint = self.text(block.get("hint"))
        lines = [*wrap(self.text(block.get("label"))), *self.inline_row([block["element"]], "  ")]
        return lines + (wrap(hint, "  ") if hint else [])


def _unicode(code: str) -> str:
    """A rich_text emoji's ``unicode`` ("1f525", "1f1f2-1f1fd") as its characters."""
    if not code:
        return ""
    try:
        return "".join(chr(int(part, 16)) for part in code.split("-"))
    except ValueError:
        return ""


def wrap(text: str, indent: str = "", *, hanging: str = "") -> list[str]:
    """``text`` in lines of at most WIDTH (with ``indent``), broken only at spaces outside inline
    code: a URL, a name with hyphens or a code span is never cut (a longer one overflows).
    ``hanging`` indents the continuation lines of a paragraph further."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        kept = _CODE.sub(lambda m: m.group(0).replace(" ", _KEEP), paragraph)
        bullet = _BULLET.match(paragraph)  # a list item's next lines align with its text
        wrapped = textwrap.wrap(
            kept,
            WIDTH - len(indent),
            replace_whitespace=False,
            break_long_words=False,
            break_on_hyphens=False,
            subsequent_indent=hanging or (" " * len(bullet.group(0)) if bullet else ""),
        )
        lines.extend(indent + line.replace(_KEEP, " ") for line in (wrapped or [""]))
    return lines


def mrkdwn(text: str, names: Mapping[str, str], *, bold: bool = False) -> str:
    """Slack's mrkdwn entities as a person sees them: `<@U0BOB>` -> `@bob`."""
    return Renderer(names, bold).mrkdwn(text).replace(_KEEP, " ")


def render_blocks(
    blocks: list[dict[str, Any]], names: Mapping[str, str], *, bold: bool = False
) -> list[str]:
    return Renderer(names, bold).blocks(blocks)


def render_message(
    *,
    author: str,
    text: str,
    blocks: list[dict[str, Any]] | None,
    names: Mapping[str, str],
    where: str,
    kind: str = "",
    in_thread: bool = False,
    bold: bool = False,
    files: list[dict[str, Any]] | None = None,
) -> str:
    """One message as a block of lines, with a one-line heading saying who, where and what."""
    renderer = Renderer(names, bold)
    body = renderer.blocks(blocks) if blocks else wrap(renderer.mrkdwn(text))
    for file in files or []:
        body.extend(file_lines(file))
    heading = f"{author} in {where}" + (f" ({kind})" if kind else "")
    indent = "    │ " if in_thread else "│ "
    prefix = "    ↳ " if in_thread else ""
    return "\n".join([prefix + heading, *(indent + line for line in body)])


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    return f"{size / 1024:.1f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MB"


def file_lines(file: dict[str, Any], width: int = 100) -> list[str]:
    """A shared file as Slack shows it in the channel: its name, size and first lines."""
    name, title = str(file.get("name", "file")), str(file.get("title") or "")
    size = int(file.get("size") or 0)
    count = file.get("lines")
    facts = _size(size) + (f", {count} lines" if isinstance(count, int) else "")
    lines = [f"📎 {name} ({facts})" + (f" — {title}" if title and title != name else "")]
    preview = str(file.get("preview") or "")
    lines.extend(
        "  ┆ " + (row if len(row) <= width else row[: width - 1] + "…")
        for row in preview.split("\n")
        if row
    )
    return lines
