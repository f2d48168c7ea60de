"""The web console: server-rendered pages (Jinja2 + HTMX), one auth dependency, vendored static assets."""
