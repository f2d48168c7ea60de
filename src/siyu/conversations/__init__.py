"""Conversations: the session archive of every message in and out, search, sensitive words, response times."""
