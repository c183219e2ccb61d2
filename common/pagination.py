"""Paging in one place: `page`/`per_page` query arguments, `Link` and `X-Total-Count` headers."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from flask import request
from marshmallow import Schema, fields, validate

from common.errors import BadRequest
from common.limits import DEFAULT_PER_PAGE, MAX_PER_PAGE


class PaginationQueryArgsSchema(Schema):
    """Mixin schema for paged list endpoints."""

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10**9),
                          metadata={"description": "Page number, from 1."})
    per_page = fields.Integer(load_default=DEFAULT_PER_PAGE, validate=validate.Range(min=1, max=MAX_PER_PAGE),
                              metadata={"description": f"Results per page, 1 to {MAX_PER_PAGE}."})


@dataclass(frozen=True)
class Page:
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    @property
    def skip(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def limit(self) -> int:
        return self.per_page


def page_from_args(args=None, max_per_page: int = MAX_PER_PAGE) -> Page:
    """Parse `page` and `per_page` from the query string; BadRequest names the bad argument."""
    args = request.args if args is None else args
    values = {}
    for name, default, upper in (("page", 1, 10**9), ("per_page", DEFAULT_PER_PAGE, max_per_page)):
        raw = args.get(name)
        if raw is None or raw == "":
            values[name] = default
            continue
        try:
            value = int(raw)
        except ValueError:
            raise BadRequest(f"{name}: must be an integer") from None
        if value < 1 or value > upper:
            raise BadRequest(f"{name}: must be between 1 and {upper}")
        values[name] = value
    return Page(**values)


# RFC 3986 pchar minus what a Link header's `<…>` could be confused by; everything else is
# percent-encoded (as UTF-8), so the header is ASCII whatever bytes the path held
_PATH_SAFE = "/!$&'()*+,;=:@-._~"


def _base_url() -> str:
    """This request's URL without its query, as an ASCII URI. The path is the decoded one
    (werkzeug replaced undecodable bytes), re-encoded here; a Host header werkzeug found invalid
    gives a relative reference (RFC 8288 allows one)."""
    path = quote((request.root_path or "") + request.path, safe=_PATH_SAFE)
    host = request.host
    return f"{request.scheme}://{host}{path}" if host else path


def link_header(page: Page, has_next: bool, total: int | None = None) -> str:
    """RFC 8288 `Link` header with first, prev, next (and last when the total is known). The
    path and the query arguments are echoed percent-encoded: the header is always ASCII."""
    base = _base_url()
    args = {k: v for k, v in request.args.items(multi=True) if k not in ("page", "per_page")}

    def url(n: int) -> str:
        query = list(args.items()) + [("page", n), ("per_page", page.per_page)]
        return f"{base}?{urlencode(query)}"

    links = [f'<{url(1)}>; rel="first"']
    if page.page > 1:
        links.append(f'<{url(page.page - 1)}>; rel="prev"')
    if has_next:
        links.append(f'<{url(page.page + 1)}>; rel="next"')
    if total is not None:
        last = max(1, -(-total // page.per_page))
        links.append(f'<{url(last)}>; rel="last"')
    return ", ".join(links)


def paging_headers(page: Page, returned: int, total: int | None = None,
                   has_next: bool | None = None) -> dict:
    """Headers for a page of results: `Link`, and `X-Total-Count` when the total is known."""
    if has_next is None:
        has_next = (page.skip + returned < total) if total is not None else returned >= page.per_page
    headers = {"Link": link_header(page, has_next, total)}
    if total is not None:
        headers["X-Total-Count"] = str(total)
    return headers
