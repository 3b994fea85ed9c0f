"""Case records: a citizen's petition tracked from the call to the answer."""
