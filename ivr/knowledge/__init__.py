"""The knowledge base: articles on administrative procedures that agents read
to citizens during a call, search without typing Vietnamese accents, and cite
when they answer a case on the spot."""
