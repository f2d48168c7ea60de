"""Conversations: the session archive of every message in and out, search, sensitive words, response times."""

from siyu.conversations import hooks as hooks  # the flush hook indexes and checks every new message
