"""Personal data over time: retention per kind, legal hold, pseudonyms of numbers."""
