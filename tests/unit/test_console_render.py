"""The sandbox console's Block Kit renderer (sandbox/terminal.py): every block and element type
as Slack shows it, headers as written, links and wrapping."""

from __future__ import annotations

from typing import Any

from sandbox.terminal import WIDTH, mrkdwn, render_blocks, render_message, short_url, wrap

NAMES = {"U0BOB": "bob", "U0ALICE": "alice", "C0OPS": "ops", "S0SRE": "sre"}


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def md(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def option(text: str, value: str, description: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {"text": md(text), "value": value}
    if description:
        found["description"] = plain(description)
    return found


def render(*blocks: dict[str, Any]) -> list[str]:
    return render_blocks(list(blocks), NAMES)


# -- headers ----------------------------------------------------------------------------------
def test_a_header_keeps_its_case() -> None:
    lines = render({"type": "header", "text": plain("Deploy api to production: v1.2.0 → v1.3.0")})
    assert lines == ["Deploy api to production: v1.2.0 → v1.3.0"]
    assert render({"type": "header", "text": plain("dhanam-api:3")}) == ["dhanam-api:3"]


def test_a_header_is_bold_on_a_terminal() -> None:
    lines = render_blocks([{"type": "header", "text": plain("Status: api")}], NAMES, bold=True)
    assert lines == ["\x1b[1mStatus: api\x1b[0m"]
    assert mrkdwn("*Plan* now", NAMES, bold=True) == "\x1b[1mPlan\x1b[0m now"
    assert mrkdwn("*Plan* now", NAMES) == "Plan now"


# -- every element the bot uses, and the rest of Block Kit -------------------------------------
CHECKLIST = {
    "type": "actions",
    "block_id": "checklist",
    "elements": [
        {
            "type": "checkboxes",
            "action_id": "incident_checklist",
            "options": [
                option("Check the AWS service health dashboard", "aws"),
                option("Verify DNS resolution", "dns", "dig +short api.dhanam.io"),
                option("Check RDS availability", "rds"),
            ],
            "initial_options": [option("Verify DNS resolution", "dns")],
        }
    ],
}


def test_checkboxes_list_every_item_checked_or_not() -> None:
    lines = render(md_section("*Total System Outage checklist* — 1 of 3 done"), CHECKLIST)
    assert lines == [
        "Total System Outage checklist — 1 of 3 done",
        "☐ Check the AWS service health dashboard",
        "☑ Verify DNS resolution",
        "    dig +short api.dhanam.io",
        "☐ Check RDS availability",
    ]


def md_section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": md(text), **extra}


def test_radio_buttons_mark_the_picked_one() -> None:
    element = {
        "type": "radio_buttons",
        "options": [option("sev1", "sev1"), option("sev2", "sev2")],
        "initial_option": option("sev2", "sev2"),
    }
    assert render({"type": "actions", "elements": [element]}) == ["◯ sev1", "◉ sev2"]


def test_buttons_are_numbered_across_the_message_in_reading_order() -> None:
    accessory = {"type": "button", "text": plain("Logs"), "url": "https://example.com/logs"}
    lines = render(
        md_section("A card", accessory=accessory),
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": plain("Approve"), "style": "primary"},
                {"type": "button", "text": plain("Deny"), "style": "danger"},
            ],
        },
    )
    assert lines == ["A card", "  [1 Logs ↗]", "[2 Approve] [3 Deny!]"]


def test_selects_show_the_pick_or_placeholder_and_their_options() -> None:
    static = {
        "type": "static_select",
        "placeholder": plain("Severity"),
        "options": [option("sev1", "1"), option("sev2", "2")],
    }
    picked = {**static, "initial_option": option("sev2", "2")}
    grouped = {
        "type": "static_select",
        "placeholder": plain("Service"),
        "option_groups": [{"label": plain("prod"), "options": [option("api", "api")]}],
    }
    users = {"type": "users_select", "initial_user": "U0BOB"}
    channels = {"type": "multi_conversations_select", "initial_conversations": ["C0OPS"]}
    empty = {"type": "external_select", "placeholder": plain("Search")}
    lines = render({"type": "actions", "elements": [static, picked]})
    assert lines == ["[Severity ▾ sev1 | sev2] [sev2 ▾ sev1 | sev2]"]
    assert render({"type": "actions", "elements": [grouped, users, channels, empty]}) == [
        "[Service ▾ api] [@bob ▾] [#ops ▾] [Search ▾]"
    ]


def test_overflow_menus_list_their_options() -> None:
    overflow = {"type": "overflow", "options": [option("Edit", "e"), option("Delete", "d")]}
    assert render(md_section("Row", accessory=overflow)) == ["Row", "  [⋯ Edit | Delete]"]


def test_date_and_time_pickers_show_the_date_or_the_placeholder() -> None:
    elements = [
        {"type": "datepicker", "initial_date": "2024-01-31"},
        {"type": "datepicker", "placeholder": plain("Pick a day")},
        {"type": "timepicker", "initial_time": "13:30"},
        {"type": "datetimepicker", "initial_date_time": 1700000000},
    ]
    assert render({"type": "actions", "elements": elements}) == [
        "[📅 2024-01-31] [📅 Pick a day] [🕒 13:30] [📅 1700000000]"
    ]


def test_context_shows_text_and_images_as_their_alt_text() -> None:
    block = {
        "type": "context",
        "elements": [
            {"type": "image", "image_url": "https://x/y.png", "alt_text": "PagerDuty logo"},
            md("Incident `inc-1` · declared by <@U0ALICE>"),
            plain("us-east-1"),
        ],
    }
    assert render(block) == [
        "  [image: PagerDuty logo] · Incident `inc-1` · declared by @alice · us-east-1"
    ]


def test_a_context_reads_like_slack_without_double_spaces() -> None:
    # Slack shows context elements side by side; the console puts a middle dot between them.
    block = {
        "type": "context",
        "elements": [md("Nothing was changed."), md("See `/dhanam help deploy`.")],
    }
    assert render(block) == ["  Nothing was changed. · See `/dhanam help deploy`."]


def test_no_rendered_line_has_a_double_space_inside_its_text() -> None:
    lines = render(
        {"type": "header", "text": plain("Deploy api to production")},
        md_section("*Plan* — <@U0BOB> at <!date^1764968640^{time}|21:04 UTC 05 Dec>"),
        {"type": "section", "fields": [md("*Service*\napi"), md("*Env*\nproduction")]},
        {
            "type": "context",
            "elements": [
                {"type": "image", "image_url": "https://x/y.png", "alt_text": "logo"},
                md("approval store unavailable. Nothing was changed."),
                md("See `/dhanam help`."),
                plain("us-east-1"),
            ],
        },
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": plain("Approve")},
                {"type": "button", "text": plain("Reject")},
            ],
        },
        CHECKLIST,
        {"type": "context", "elements": [md("word " * 30)]},
    )
    for line in lines:
        assert "  " not in line.lstrip(" │┃"), line


def test_wrapping_never_cuts_a_date() -> None:
    date = "<!date^1764968640^{time} UTC {date_short}|21:04 UTC 05 Dec>"
    for pad in range(50, 80):
        text = "x" * pad + " requested at " + date + " by @alice"
        lines = render(md_section(text))
        assert any("21:04 UTC 05 Dec" in line for line in lines), lines
        rich = render(
            {
                "type": "rich_text",
                "elements": [
                    {
                        "type": "rich_text_section",
                        "elements": [
                            {"type": "text", "text": "x" * pad + " at "},
                            {
                                "type": "date",
                                "timestamp": 1764968640,
                                "format": "{time}",
                                "fallback": "21:04 UTC 05 Dec",
                            },
                        ],
                    }
                ],
            }
        )
        assert any("21:04 UTC 05 Dec" in line for line in rich), rich
        assert "\ue000" not in "".join(lines + rich)


def test_image_blocks_and_accessories_are_their_alt_text() -> None:
    image = {"type": "image", "image_url": "https://x/g.png", "alt_text": "error rate graph"}
    accessory = {"type": "image", "image_url": "https://x/a.png", "alt_text": "avatar"}
    assert render(image) == ["[image: error rate graph]"]
    titled = {**image, "title": plain("5xx, last hour")}
    assert render(titled) == ["[image: error rate graph] 5xx, last hour"]
    assert render(md_section("bob", accessory=accessory)) == ["bob", "  [image: avatar]"]


def test_rich_text_sections_lists_quotes_and_code() -> None:
    block = {
        "type": "rich_text",
        "elements": [
            {
                "type": "rich_text_section",
                "elements": [
                    {"type": "text", "text": "Paged "},
                    {"type": "user", "user_id": "U0BOB"},
                    {"type": "text", "text": " and "},
                    {"type": "usergroup", "usergroup_id": "S0SRE"},
                    {"type": "text", "text": " in "},
                    {"type": "channel", "channel_id": "C0OPS"},
                    {"type": "text", "text": " "},
                    {"type": "emoji", "name": "fire"},
                    {"type": "text", "text": " run ", "style": {}},
                    {"type": "text", "text": "kubectl get", "style": {"code": True}},
                ],
            },
            {
                "type": "rich_text_list",
                "style": "ordered",
                "elements": [
                    {"type": "rich_text_section", "elements": [{"type": "text", "text": "one"}]},
                    {"type": "rich_text_section", "elements": [{"type": "text", "text": "two"}]},
                ],
            },
            {
                "type": "rich_text_list",
                "style": "bullet",
                "indent": 1,
                "elements": [
                    {"type": "rich_text_section", "elements": [{"type": "text", "text": "sub"}]}
                ],
            },
            {"type": "rich_text_quote", "elements": [{"type": "text", "text": "quoted"}]},
            {
                "type": "rich_text_preformatted",
                "elements": [{"type": "text", "text": "line 1\nline 2"}],
            },
        ],
    }
    assert render(block) == [
        "Paged @bob and @sre in #ops 🔥 run `kubectl get`",
        "1. one",
        "2. two",
        "  • sub",
        "┃ quoted",
        "    line 1",
        "    line 2",
    ]


def test_inputs_markdown_and_unknown_blocks() -> None:
    field = {"type": "plain_text_input", "placeholder": plain("What happened?")}
    input_block = {"type": "input", "label": plain("Summary"), "element": field}
    assert render(input_block) == ["Summary", "  [✎ What happened?]"]
    assert render({"type": "markdown", "text": "**bold**? *yes*"}) == ["**bold**? yes"]
    assert render({"type": "divider"}) == ["─" * 40]
    assert render({"type": "something_new"}) == ["[something_new block]"]


def test_section_fields_read_as_label_and_value() -> None:
    block = {"type": "section", "fields": [md("*Service*\napi"), md("*Environment*\nproduction")]}
    assert render(block) == ["  Service api", "  Environment production"]


def test_every_block_and_element_type_the_bot_emits_is_rendered() -> None:
    """The renderers in commands/ emit these; none may fall through to "[type]"."""
    shown = render(
        {"type": "header", "text": plain("h")},
        md_section("s", fields=[md("f")], accessory={"type": "button", "text": plain("b")}),
        {"type": "context", "elements": [md("c")]},
        {"type": "divider"},
        {"type": "actions", "elements": [{"type": "button", "text": plain("a")}]},
        CHECKLIST,
    )
    assert not [line for line in shown if line.startswith("[") and " block]" in line]


# -- mrkdwn, links and wrapping ---------------------------------------------------------------
def test_mentions_channels_groups_dates_and_emoji() -> None:
    text = "<@U0BOB> in <#C0OPS> <!subteam^S0SRE> <!here> <!date^1700000000^{date}|Nov 14> :mag:"
    assert mrkdwn(text, NAMES) == "@bob in #ops @sre @here Nov 14 🔍"
    assert mrkdwn("`*not bold* :mag:`", NAMES) == "`*not bold* :mag:`"  # code as typed


def test_a_link_shows_its_label_and_its_url_once_per_message() -> None:
    url = "https://dhanam-sandbox.pagerduty.com/incidents/Q0ABC000000001"
    text = f"<{url}|open in PagerDuty> · again: <{url}|PagerDuty> · <https://example.com/>"
    assert mrkdwn(text, NAMES) == (
        "open in PagerDuty (dhanam-sandbox.pagerduty.com/incidents/Q0ABC000000001) · "
        "again: PagerDuty · example.com"
    )
    assert mrkdwn("<mailto:sre@dhanam.io|sre@dhanam.io>", NAMES) == "sre@dhanam.io"


def test_long_urls_are_shortened_sensibly() -> None:
    assert short_url("https://www.example.com/a/b") == "example.com/a/b"
    long_path = "https://console.aws.amazon.com/ecs/v2/clusters/dhanam-production/services/dhanam-api/deployments"
    assert short_url(long_path) == "console.aws.amazon.com/ecs/…/services/dhanam-api/deployments"
    query = (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/x"
    )
    assert short_url(query) == "us-east-1.console.aws.amazon.com/cloudwatch/home?…"
    assert len(short_url("https://h.io/" + "x" * 200)) <= 60


def test_wrapping_never_cuts_a_url_or_inline_code() -> None:
    url = "https://dhanam-sandbox.pagerduty.com/incidents/Q0ABC000000001/log_entries/R0LONG"
    text = (
        "PagerDuty: triggered · the incident is at "
        + url
        + " and the command is `/dhanam incident update|status|commander|resolve` in this channel"
    )
    lines = wrap(text, "│ ")
    joined = " ".join(line.removeprefix("│ ") for line in lines)
    assert joined == text
    assert any(url in line for line in lines)
    assert any("`/dhanam incident update|status|commander|resolve`" in line for line in lines)
    assert all(len(line) <= WIDTH for line in lines if url not in line)  # a URL may overflow


def test_names_with_hyphens_are_not_split() -> None:
    lines = wrap("x " * 33 + "#inc-20261205-api-returning-5xx · commander @alice")
    assert any("#inc-20261205-api-returning-5xx" in line for line in lines)


def test_a_wrapped_list_item_lines_up_under_its_text() -> None:
    lines = wrap("• 20:43 UTC 05 Dec @bob: resolved: " + "word " * 14 + "end")
    assert lines[0].startswith("• ")
    assert lines[1].startswith("  ")
    assert not lines[1].startswith("   ")


def test_a_message_heading_says_who_where_and_what() -> None:
    shown = render_message(
        author="dhanam",
        text="<@U0BOB> approved",
        blocks=None,
        names=NAMES,
        where="#deploys",
        kind="edited",
        in_thread=True,
    )
    assert shown == "    ↳ dhanam in #deploys (edited)\n    │ @bob approved"
