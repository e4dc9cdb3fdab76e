"""What every node's pages share: layout, login sessions, CSRF, vendored assets, print styles, errors.

A node program builds its Flask app, then calls `init_pages(app, site)`:

- templates `sanji/base.html` (the screen layout: the centre's name, who is
  signed in, the navigation, flashed messages) and `sanji/print.html` (an A4
  printout with the county's and the centre's names), and the macros in
  `sanji/macros.html` (form fields with their errors beside them, pagination,
  the deadline colour, yes/no);
- static files under `/static/sanji/` (served from this package: no CDN, no
  web fonts; the system's Chinese fonts);
- CSRF on every form (Flask-WTF's `CSRFProtect`), an Origin check on every
  state-changing request, security headers, no caching of pages that show
  personal data;
- sessions that expire after `site.idle_minutes` without a request;
- Chinese error pages (404, 403, CSRF, 500 with an incident number that is
  also in the log), never a traceback.

The sync API under `/api/` keeps its own node-key authentication and is left
alone by all of this.
"""

from __future__ import annotations

from .site import NavItem, Site, init_pages, workspace

__all__ = ["NavItem", "Site", "init_pages", "workspace"]
