"""Names and phrases of the simulator: features, companies, people and comments.

All lists are fixed, so the same draw indices give the same text on every run.
"""

from __future__ import annotations

__all__ = [
    "COMMENTS",
    "COMPANY_NOUNS",
    "COMPANY_PREFIXES",
    "COMPANY_SUFFIXES",
    "CSM_NAMES",
    "FEATURE_NAMES",
    "FIRST_NAMES",
    "INDUSTRIES",
    "feature_names",
]

# Ordered by popularity: the first is the most used under the Zipf-like weights.
FEATURE_NAMES = (
    "dashboards",
    "reports",
    "search",
    "alerts",
    "sharing",
    "comments",
    "file_upload",
    "calendar",
    "tasks",
    "templates",
    "mobile_app",
    "notifications",
    "integrations",
    "automations",
    "forms",
    "approvals",
    "time_tracking",
    "goals",
    "roadmaps",
    "kanban_board",
    "gantt_chart",
    "custom_fields",
    "api_access",
    "webhooks",
    "audit_log",
    "sso",
    "user_groups",
    "permissions",
    "data_import",
    "scheduled_exports",
    "workload_view",
    "budget_tracking",
    "portfolio_view",
    "guest_access",
    "ai_assistant",
    "sandbox",
)

COMPANY_PREFIXES = (
    "Acme",
    "Blue",
    "Bright",
    "Cedar",
    "Clear",
    "Copper",
    "Delta",
    "Evergreen",
    "First",
    "Golden",
    "Granite",
    "Harbor",
    "Iron",
    "Juniper",
    "Lakeside",
    "Maple",
    "North",
    "Nova",
    "Oak",
    "Pioneer",
    "Quantum",
    "Red",
    "Silver",
    "Summit",
    "Union",
    "Vertex",
)

COMPANY_NOUNS = (
    "Analytics",
    "Bakery",
    "Biotech",
    "Capital",
    "Clinics",
    "Logistics",
    "Foods",
    "Freight",
    "Health",
    "Labs",
    "Legal",
    "Media",
    "Motors",
    "Networks",
    "Outfitters",
    "Partners",
    "Robotics",
    "Software",
    "Studios",
    "Systems",
    "Textiles",
    "Travel",
)

COMPANY_SUFFIXES = ("Inc", "LLC", "Ltd", "GmbH", "Group", "Co")

INDUSTRIES = (
    "Software",
    "Retail",
    "Healthcare",
    "Financial services",
    "Manufacturing",
    "Education",
    "Media",
    "Logistics",
)

CSM_NAMES = (
    "Alice Moreau",
    "Bilal Khan",
    "Carmen Ortiz",
    "Daniel Weber",
    "Emeka Obi",
    "Fatima Zahra",
    "Grace Lee",
    "Hiroshi Sato",
    "Ingrid Larsen",
    "Jonas Berg",
    "Kavya Nair",
    "Luca Rossi",
)

FIRST_NAMES = (
    "ana",
    "ben",
    "chloe",
    "david",
    "elena",
    "farid",
    "gina",
    "hugo",
    "isla",
    "jack",
    "kim",
    "liam",
    "maria",
    "noah",
    "olga",
    "pedro",
    "quinn",
    "rosa",
    "sam",
    "tara",
    "uma",
    "victor",
    "wei",
    "yusuf",
)

# Survey comments by sentiment: negative, neutral, positive.
COMMENTS: dict[str, tuple[str, ...]] = {
    "negative": (
        "Too slow and keeps crashing.",
        "Support never got back to us.",
        "Hard to use, the team gave up on it.",
        "Missing the reports we need.",
        "Too expensive for what we get.",
        "The last update broke our workflow.",
    ),
    "neutral": (
        "It does the job.",
        "Fine overall, a few rough edges.",
        "Okay, but setup took a while.",
        "Useful, though the mobile app lags.",
        "Decent value for the price.",
    ),
    "positive": (
        "Love it, the team uses it every day.",
        "Great support, quick answers.",
        "Saves us hours every week.",
        "Easy to set up and very reliable.",
        "The dashboards are excellent.",
        "Best tool we have bought this year.",
    ),
}


def feature_names(count: int) -> list[str]:
    """Return ``count`` feature names, most popular first.

    Past the named features, names continue as ``feature_37``, ``feature_38`` and so on.
    """
    names = list(FEATURE_NAMES[:count])
    names += [f"feature_{number}" for number in range(len(names) + 1, count + 1)]
    return names
