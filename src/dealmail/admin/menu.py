"""The dashboard's screens, in menu order: page file, title, icon."""

from __future__ import annotations

from pathlib import Path

# Not "pages/": Streamlit would list a pages/ folder beside app.py to visitors not logged in.
SCREENS_DIR = Path(__file__).parent / "screens"
SCREENS = [
    ("home.py", "Home", ":material/home:"),
    ("contacts.py", "Contacts", ":material/group:"),
    ("segments.py", "Segments", ":material/filter_alt:"),
    ("deals.py", "Deals", ":material/sell:"),
    ("campaigns.py", "Campaigns", ":material/campaign:"),
    ("locations.py", "Locations & devices", ":material/storefront:"),
    ("inbox.py", "Inbox", ":material/inbox:"),
    ("reports.py", "Reports", ":material/bar_chart:"),
    ("settings.py", "Settings", ":material/settings:"),
]
