"""The console's navigation: product modules in the order of the marketing loop, and role names."""

from __future__ import annotations

from dataclasses import dataclass

from siyu.core.permissions import MODULES


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return message


@dataclass(frozen=True)
class NavPage:
    """One console page of a module that has shipped, listed under the module in the sidebar."""

    path: str
    title: str
    # Roles that may not open the page although they may read its module (the sidebar leaves it out).
    hidden_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProductModule:
    """A product module's place in the console: its title and what it will do, shown until it arrives."""

    key: str
    title: str
    promise: str
    first_step: str
    # The module's own pages once it ships; until then the sidebar links to its promise page.
    pages: tuple[NavPage, ...] = ()

    @property
    def href(self) -> str:
        """Where the sidebar entry leads: the module's first page, or its promise page."""
        return self.pages[0].path if self.pages else f"/console/m/{self.key}"

    def owns(self, path: str) -> bool:
        """True when `path` is one of the module's pages or below one (its sub-pages show then)."""
        return any(path == p.path or path.startswith(p.path + "/") for p in self.pages)


# Acquire → welcome & tag → retain → activate → convert → review (PRODUCT.md).
PRODUCT_MODULES: tuple[ProductModule, ...] = (
    ProductModule(
        "acquisition",
        N_("Acquisition"),
        N_(
            "Channel live codes, one per source such as a parcel card, a store poster or a live stream, "
            "with staff rotation, spend and the cost of each new contact."
        ),
        N_("Create a channel code for your first source and print its QR code."),
        pages=(
            NavPage("/console/channel-codes", N_("Channel codes")),
            NavPage("/console/sources", N_("Sources")),
            NavPage("/console/group-codes", N_("Group codes")),
            NavPage("/console/customer-groups", N_("Customer groups")),
            NavPage("/console/poster-templates", N_("Posters")),
            NavPage("/console/acquisition/spend", N_("Cost table")),
            NavPage("/console/acquisition/compare", N_("Source comparison")),
        ),
    ),
    ProductModule(
        "contacts",
        N_("Contacts"),
        N_(
            "One profile per real person across WeChat, WeCom, SMS and email, with tags, consent, "
            "owners, lifecycle stages and segments."
        ),
        N_("Connect a channel or import a CSV file to bring in your first contacts."),
        pages=(
            NavPage("/console/contacts", N_("Contacts")),
            NavPage("/console/segments", N_("Segments")),
            NavPage("/console/tags", N_("Tags")),
            NavPage("/console/staff", N_("Staff")),
            NavPage("/console/lifecycle", N_("Lifecycle")),
            NavPage("/console/imports", N_("Import")),
            NavPage("/console/contact-settings", N_("Settings")),
        ),
    ),
    ProductModule(
        "channels",
        N_("Channels"),
        N_("The accounts you talk through: WeChat Official Accounts, WeCom apps, SMS, email and webhooks."),
        N_("Connect your WeChat Official Account or WeCom app."),
        pages=(NavPage("/console/channels", N_("Accounts")),),
    ),
    ProductModule(
        "messaging",
        N_("Messaging"),
        N_(
            "Welcome messages, keyword replies and broadcasts to segments, within frequency caps and "
            "quiet hours."
        ),
        N_("Write the welcome message new contacts receive."),
        pages=(
            NavPage("/console/broadcasts", N_("Broadcasts")),
            NavPage("/console/welcome", N_("Welcome messages")),
            NavPage("/console/keywords", N_("Keyword replies")),
            NavPage("/console/templates", N_("Templates")),
            NavPage("/console/broadcast-settings", N_("Caps and quiet hours")),
        ),
    ),
    ProductModule(
        "conversations",
        N_("Conversations"),
        N_(
            "Every message in and out, searchable, with sensitive-word alerts and response times per "
            "staff member."
        ),
        N_("Conversations appear here once a channel is connected."),
        pages=(
            NavPage("/console/inbox", N_("Inbox")),
            NavPage("/console/archive", N_("Archive search")),
            NavPage("/console/alerts", N_("Alerts"), hidden_from=("staff",)),
            NavPage("/console/conversation-reports", N_("Reports"), hidden_from=("staff",)),
            NavPage("/console/sensitive-words", N_("Sensitive words"), hidden_from=("staff",)),
        ),
    ),
    ProductModule(
        "journeys",
        N_("Journeys"),
        N_(
            "Automations that wait, branch and act: welcome series, birthday greetings, win-back of "
            "silent customers."
        ),
        N_("Start a journey from a trigger such as a new contact or a tag."),
    ),
    ProductModule(
        "promotions",
        N_("Promotions"),
        N_("Coupons, pricing rules, points and membership tiers, with budgets and redemption tracking."),
        N_("Create a coupon template to reward new contacts."),
    ),
    ProductModule(
        "activities",
        N_("Activities"),
        N_(
            "Flash sales, group buys, bargains, lotteries, referrals and pre-sales that contacts join "
            "and share."
        ),
        N_("Plan an activity and choose who may join."),
    ),
    ProductModule(
        "campaigns",
        N_("Campaigns"),
        N_(
            "Plans, tasks and a content calendar that tie messages and activities to a goal, with a "
            "review when they end."
        ),
        N_("Set a goal and a date range for your first campaign."),
    ),
    ProductModule(
        "analytics",
        N_("Analytics"),
        N_(
            "Funnels, retention, attribution, experiments and customer value, from the events every "
            "module writes."
        ),
        N_("Send your shop's orders as events to measure what each channel earns."),
    ),
)
BY_KEY = {m.key: m for m in PRODUCT_MODULES}
assert set(BY_KEY) <= set(MODULES), "every console module is a permission module"

ROLE_NAMES = {
    "owner": N_("Owner"),
    "admin": N_("Admin"),
    "operator": N_("Operator"),
    "analyst": N_("Analyst"),
    "staff": N_("Staff"),
}

JOB_STATUS_NAMES = {
    "pending": N_("Waiting"),
    "running": N_("Running"),
    "done": N_("Done"),
    "parked": N_("Parked"),
    "unknown": N_("Outcome unknown"),
}
