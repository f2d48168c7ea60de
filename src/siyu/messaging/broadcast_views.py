"""Console: broadcasts — the list, the composer (live audience count, preview for a chosen contact,
schedule in the workspace's timezone), the page of one broadcast with its delivery report filling while
it sends (htmx polling), and the settings of caps and quiet hours."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.datastructures import FormData

from siyu.channels import service as channels
from siyu.console.nav import N_
from siyu.console.shell import FLASHES, Console, ConsoleDep, ConsoleRoute, FormDep, explain, form_text, redirect
from siyu.contacts import segments
from siyu.core.errors import Invalid, SiyuError
from siyu.messaging import broadcast_report, broadcasts, caps, message_templates, templates
from siyu.messaging.content import TYPES
from siyu.messaging.views import TYPE_NAMES, content_from_form, explain_here, form_of_content, render_preview

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

STATUS_NAMES = {
    "draft": N_("Draft"), "scheduled": N_("Scheduled"), "sending": N_("Sending"), "paused": N_("Paused"),
    "done": N_("Done"), "cancelled": N_("Cancelled"),
}
RECIPIENT_STATUS_NAMES = {
    "pending": N_("Waiting"), "held": N_("Held"), "queued": N_("Queued"), "sending": N_("Sending"),
    "sent": N_("Sent"), "delivered": N_("Delivered"), "opened": N_("Opened"), "clicked": N_("Clicked"),
    "failed": N_("Failed"), "skipped": N_("Skipped"),
}
PERIOD_NAMES = {"day": N_("day"), "week": N_("week"), "month": N_("month")}
BUCKET_NAMES = {"morning": N_("morning"), "afternoon": N_("afternoon"), "evening": N_("evening")}
FLASHES.update({
    "broadcast_saved": N_("Broadcast saved as a draft."),
    "broadcast_scheduled": N_("Broadcast scheduled."),
    "broadcast_paused": N_("Broadcast paused. Messages that had not left are held."),
    "broadcast_resumed": N_("Broadcast resumed."),
    "broadcast_cancelled": N_("Broadcast cancelled."),
    "broadcast_settings_saved": N_("Caps and quiet hours saved."),
})
EXPLAINED: dict[tuple[str, str | None], str] = {
    ("invalid", "name"): N_("Enter a name of at most 120 characters."),
    ("conflict", "name"): N_("Another broadcast has this name."),
    ("invalid", "account_id"): N_("Choose the account to send through."),
    ("not_found", "account_id"): N_("Choose the account to send through."),
    ("invalid", "segment_id"): N_("Choose the segment to send to."),
    ("not_found", "segment_id"): N_("Choose the segment to send to."),
    ("invalid", "content.type"): N_("This account's channel can't carry this kind of message."),
    ("invalid", "scheduled_at"): N_("Choose a date and time in the future."),
    ("invalid", "window_hours"): N_("Enter a window of 1 to 72 hours."),
    ("conflict", "status"): N_("The broadcast can't do that in its current state."),
    ("invalid", "quiet_start"): N_("Write a time of day as HH:MM, such as 21:00."),
    ("invalid", "quiet_end"): N_("Write a time of day as HH:MM, such as 09:00, different from the start."),
}
ACTIONS = {"pause": "broadcast_paused", "resume": "broadcast_resumed", "cancel": "broadcast_cancelled"}


def _explain(console: Console, exc: SiyuError) -> str:
    message = EXPLAINED.get((exc.code, exc.field))
    if message is None and exc.field and exc.field.startswith("content."):
        return explain_here(exc, console)  # the content editor's sentences, as in templates
    if message is None and exc.field and exc.field.startswith("caps."):
        message = N_("A cap is a whole number from 0 to 1000, or empty for no cap.")
    return console.gettext(message) if message else explain(exc, console.locale)



def _editable(console: Console) -> bool:
    return console.can("messaging", "write")


def _settings_context(console: Console) -> dict[str, Any]:
    settings = caps.get_settings(console.db)
    tz = broadcasts.workspace_tz(console.db)
    return {"limits": settings, "tz": tz.key, "tz_info": tz, "period_names": PERIOD_NAMES}


@router.get("/console/broadcasts")
def list_page(console: ConsoleDep, cursor: str | None = None) -> Response:
    """Every broadcast, newest first, with how far it got."""
    console.auth.require("messaging", "read")
    rows, next_cursor = broadcasts.list_broadcasts(console.db, cursor=cursor, limit=50)
    return console.page("messaging/broadcasts/list.html", broadcasts=rows, next_cursor=next_cursor,
                        status_names=STATUS_NAMES, editable=_editable(console), **_settings_context(console))


def _composer(console: Console, *, values: dict[str, Any], errors: dict[str, str] | None = None,
              status: int = 200) -> Response:
    rows, _ = segments.list_segments(console.db, limit=200)
    return console.page("messaging/broadcasts/compose.html", status=status, values=values, errors=errors or {},
                        segments=rows, accounts=channels.list_accounts(console.db), fields=templates.FIELDS,
                        saved_templates=message_templates.list_templates(console.db),
                        types=TYPES, type_names=TYPE_NAMES,
                        **_settings_context(console))


@router.get("/console/broadcasts/new")
def new_page(console: ConsoleDep, template: str | None = None) -> Response:
    """The composer; `?template=<id>` starts it from a saved message template's content."""
    console.auth.require("messaging", "write")
    values: dict[str, Any] = {"window_hours": "24", "when": "now"}
    if template:
        values.update(form_of_content(message_templates.get_template(console.db, template).content),
                      template=template)
    return _composer(console, values=values)


def _values(form: FormData) -> dict[str, Any]:
    names = ("name", "account_id", "segment_id", "scheduled_at", "window_hours", "when")
    values: dict[str, Any] = {k: form_text(form, k) for k in names}
    values["optimise_send_time"] = form.get("optimise_send_time") == "on"
    values.update(form_of_content(content_from_form(form)))
    return values


@router.post("/console/broadcasts")
def create(console: ConsoleDep, form: FormDep) -> Response:
    """Save the composer as a draft, then schedule it or send it now when asked."""
    console.auth.require("messaging", "write")
    values = _values(form)
    try:
        with console.db.begin_nested():
            window = values["window_hours"]
            b = broadcasts.create_broadcast(
                console.db, name=values["name"], account_id=values["account_id"] or None,
                segment_id=values["segment_id"] or None, content=content_from_form(form),
                optimise_send_time=values["optimise_send_time"],
                window_hours=int(window) if window.isdigit() and len(window) < 4 else -1, actor=console.actor)
            if values["when"] in ("now", "later"):
                at = None if values["when"] == "now" else values["scheduled_at"]
                if at == "":
                    raise Invalid("choose a time", field="scheduled_at")
                broadcasts.schedule(console.db, b, at=at, actor=console.actor)
    except SiyuError as exc:
        return _composer(console, values=values, errors={exc.field or "_form": _explain(console, exc)},
                         status=exc.status)
    flash = "broadcast_saved" if values["when"] == "draft" else "broadcast_scheduled"
    return redirect(f"/console/broadcasts/{b.id}", flash=flash)


@router.post("/console/broadcasts/audience")
def audience(console: ConsoleDep, form: FormDep) -> Response:
    """The composer's live answer: how many contacts the chosen segment holds now."""
    console.auth.require("messaging", "read")
    segment_id = form_text(form, "segment_id")
    segment = segments.get_segment(console.db, segment_id) if segment_id.isdigit() else None
    count = segments.visible_member_count(console.db, segment, None) if segment is not None else None
    sample = segments.list_members(console.db, segment, limit=20)[0] if segment is not None else []
    return console.page("messaging/broadcasts/_audience.html", segment=segment, count=count, sample=sample,
                        chosen=form_text(form, "preview_contact_id"))


@router.post("/console/broadcasts/preview")
def preview(console: ConsoleDep, form: FormDep) -> Response:
    """The message as one chosen contact of the audience would read it."""
    console.auth.require("messaging", "read")
    return render_preview(console, content_from_form(form), form_text(form, "preview_contact_id"))


def _detail(console: Console, b: Any) -> dict[str, Any]:
    counts = broadcast_report.status_counts(console.db, b)
    series = broadcast_report.over_time(console.db, b, broadcasts.workspace_tz(console.db))
    shown = [s for s in broadcast_report.REPORT_STATUSES if counts.get(s)]
    return {
        "b": b, "counts": counts, "series": series, "status_names": STATUS_NAMES, "type_names": TYPE_NAMES,
        "recipient_status_names": RECIPIENT_STATUS_NAMES, "bucket_names": BUCKET_NAMES,
        "status_chart": {"labels": [console.gettext(RECIPIENT_STATUS_NAMES[s]) for s in shown],
                         "counts": [counts[s] for s in shown]},
        "sent_chart": {"labels": series.labels, "counts": series.sent},
        "click_chart": {"labels": series.labels, "counts": series.clicked},
        "reasons": broadcast_report.reasons(console.db, b), "links": broadcast_report.link_clicks(console.db, b),
        "recipients": broadcast_report.list_recipients(console.db, b, limit=20)[0],
        "polling": b.status in ("scheduled", "sending"),
        "tz": broadcasts.workspace_tz(console.db),
    }


@router.get("/console/broadcasts/{broadcast_id}")
def detail_page(broadcast_id: int, console: ConsoleDep) -> Response:
    """One broadcast: what it sends to whom, its actions and its delivery report."""
    console.auth.require("messaging", "read")
    b = broadcasts.get_broadcast(console.db, broadcast_id)
    account = channels.get_account(console.db, b.account_id) if b.account_id else None
    segment = segments.get_segment(console.db, b.segment_id) if b.segment_id else None
    return console.page("messaging/broadcasts/detail.html", account=account, segment=segment,
                        editable=_editable(console), **_detail(console, b))


@router.get("/console/broadcasts/{broadcast_id}/report")
def report_fragment(broadcast_id: int, console: ConsoleDep) -> Response:
    """The report alone, which the page polls while the broadcast sends."""
    console.auth.require("messaging", "read")
    b = broadcasts.get_broadcast(console.db, broadcast_id)
    return console.page("messaging/broadcasts/_report.html", **_detail(console, b))


@router.post("/console/broadcasts/{broadcast_id}/{action}")
def act(broadcast_id: int, action: str, console: ConsoleDep, form: FormDep) -> Response:
    """Pause, resume or cancel."""
    console.auth.require("messaging", "write")
    b = broadcasts.get_broadcast(console.db, broadcast_id)
    if action not in ACTIONS:
        raise Invalid("unknown action", field="action")
    getattr(broadcasts, action)(console.db, b, actor=console.actor)
    return redirect(f"/console/broadcasts/{b.id}", flash=ACTIONS[action])


def _settings_page(console: Console, *, errors: dict[str, str] | None = None, values: dict[str, Any] | None = None,
                   status: int = 200) -> Response:
    settings = caps.get_settings(console.db)
    kinds = sorted({*caps.CHANNEL_KINDS[1:], *(a.kind for a in channels.list_accounts(console.db))})
    if values is None:
        values = {f"{k}.{p}": str(v) for k, row in (settings.caps or {}).items() for p, v in row.items()}
        values.update(quiet_start=settings.quiet_start or "", quiet_end=settings.quiet_end or "")
    return console.page("messaging/broadcasts/settings.html", status=status, kinds=["*", *kinds],
                        periods=caps.PERIODS, period_names=PERIOD_NAMES, values=values, errors=errors or {},
                        editable=_editable(console), tz=broadcasts.workspace_tz(console.db).key)


@router.get("/console/broadcast-settings")
def settings_page(console: ConsoleDep) -> Response:
    """Frequency caps per channel and quiet hours."""
    console.auth.require("messaging", "read")
    return _settings_page(console)


@router.post("/console/broadcast-settings")
def save_settings(console: ConsoleDep, form: FormDep) -> Response:
    """Save caps and quiet hours; a refused value names its field and changes nothing."""
    console.auth.require("messaging", "write")
    values = {k: v.strip() for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    limits: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        kind, _, period = key.rpartition(".")
        if kind and period in caps.PERIODS and value:
            limits.setdefault(kind, {})[period] = int(value) if value.isdigit() and len(value) < 6 else -1
    try:
        with console.db.begin_nested():
            caps.update_settings(console.db, caps=limits, quiet_start=values.get("quiet_start") or None,
                                 quiet_end=values.get("quiet_end") or None, actor=console.actor)
    except SiyuError as exc:
        field = "caps" if (exc.field or "").startswith("caps.") else exc.field or "_form"
        return _settings_page(console, errors={field: _explain(console, exc)}, values=values, status=exc.status)
    return redirect("/console/broadcast-settings", flash="broadcast_settings_saved")
