"""Pictures: overlays (overlays.py), legends (legends.py), image maps (maps.py), picture files (files.py) and matplotlib charts (charts.py)."""
