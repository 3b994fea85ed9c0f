"""The FastAGI adapter: translates flow steps into AGI commands (panoramisk)."""
