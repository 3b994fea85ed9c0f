"""One intake path for every channel into the case store (issue 14)."""
