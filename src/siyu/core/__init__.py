"""The shared kernel: db, tenancy, auth, errors, events, jobs, clock, money, i18n. Imports no module."""
