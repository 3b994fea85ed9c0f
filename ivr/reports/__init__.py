"""Figures kept ahead of the reports that read them (the statistics page's roll-up)."""
