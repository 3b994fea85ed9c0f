"""Contracts shared by the layers above: names the dialplan, the AGI server,
the fallback script, the database and the console must spell alike.

Bottom layer: imports nothing from the project, so any package may import it.
"""
