"""Messaging: templates, welcome messages, keyword replies, broadcasts with caps, quiet hours and send times."""
