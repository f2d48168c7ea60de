"""The customer base: contacts and their identities, attributes, consent, tags, owners and segments.

Importing the package installs its person resolver, so every process that loads the contacts tables
(the app, the worker, the CLI) resolves the people events name to contacts.
"""

from siyu.contacts import resolver as _resolver  # noqa: F401
