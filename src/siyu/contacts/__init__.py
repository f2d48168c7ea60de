"""The customer base: contacts and their identities, attributes, consent, tags, owners and segments.

Importing the package installs its person resolver and registers its event subscribers and batch
listeners (segments, tag rules, lifecycle), so every process that loads the contacts tables (the
app, the worker, the CLI importing a file) resolves the people events name to contacts and queues
the work those events call for: events recorded where a listener isn't registered never reach it.
"""

from siyu.contacts import lifecycle as _lifecycle  # noqa: F401
from siyu.contacts import resolver as _resolver  # noqa: F401
from siyu.contacts import segments as _segments  # noqa: F401
from siyu.contacts import tag_rules as _tag_rules  # noqa: F401
