"""``modelreg ui`` (a local, read-only web app) and ``modelreg report`` (the same views as one
HTML file). Standard library only: http.server, html.escape, SVG drawn by charts.py; no
script on any page. Data comes from the library's read functions; weights are never
loaded."""

from .report import build as build_report
from .server import make_server, url_of

__all__ = ["build_report", "make_server", "url_of"]
