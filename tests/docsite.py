"""A small documentation site served on 127.0.0.1 from a thread of the test process.

It has what a crawler meets: a sitemap index over a plain and a gzipped sitemap (and one
that is missing), a redirect, a 404, a page that answers 429 with Retry-After once, a
robots.txt denying /private/, a PDF, a page over 5 MB, and pages in English and Norwegian.
Links: every page's navigation reaches /docs/ and /docs/install, the home page links the
guide, and the guide links /docs/slow, the private page, the PDF and another site.
/sitemap-many.xml lists MANY_PAGES plain pages, for a crawl long enough to interrupt;
/js/app and /js/late have content only once their JavaScript ran (for web_crawler).
"""

from __future__ import annotations

import gzip
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HUGE_BYTES = 6 * 1024 * 1024


def _page(lang: str, title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title} - Docs</title>
<meta name="description" content="{title}: factflow documentation"></head>
<body><nav><a href="/docs/">Home</a> | <a href="/docs/install">Install</a></nav>
<div class="cookie-banner">We use cookies to improve this site. Accept all cookies?</div>
<main><article><h1>{title}</h1>{body}</article></main>
<footer>Copyright factflow authors. Footer links and legal text.</footer></body></html>"""


_INSTALL = _page(
    "en",
    "Installing factflow",
    """<p>factflow runs declarative pipelines compiled into dataflows. This page explains how
to install it on a fresh machine and how to check that the installation works.</p>
<h2>Requirements</h2><p>You need a recent Python and pip. The following list names them.</p>
<ul><li>Python 3.11 or newer</li><li>pip 23 or newer</li></ul>
<h3>Optional services</h3><p>Brokers are optional; the file queue needs no service at all,
which makes it the simplest way to try factflow on a laptop.</p>
<pre><code>pip install factflow
factflow compile pipelines/text.yaml</code></pre>
<table><tr><th>provider</th><th>needs</th></tr><tr><td>file</td><td>nothing</td></tr>
<tr><td>kafka</td><td>a broker</td></tr></table>
<h2>Next steps</h2><p>Read the guide to write your first pipeline with adapters and routes.</p>""",
)

_GUIDE = _page(
    "en",
    "Pipeline guide",
    "".join(
        f"<h2>Step {i}</h2><p>"
        + " ".join(
            f"Sentence {j} of step {i} explains routes, queues and adapters." for j in range(30)
        )
        + "</p>"
        for i in range(1, 5)
    )
    # links for a link crawler: one more page two clicks from the home page, a denied one,
    # a file, an external site and a fragment
    + '<p>See also the <a href="/docs/slow">rate limited page</a>, the'
    ' <a href="/private/secret">private page</a>, the <a href="/files/manual.pdf">manual</a>,'
    ' <a href="https://example.org/elsewhere">another site</a> and'
    ' <a href="#step-1">the first step</a>.</p>',
)

_INDEX = _page(
    "en",
    "factflow documentation",
    """<p>Welcome to the factflow documentation. Start with the installation page, then read
the pipeline guide, which walks through routes, adapters and queues step by step.</p>
<h2>Contents</h2><ul><li><a href="/docs/install">Installing</a></li>
<li><a href="/docs/guide">Guide</a></li></ul>""",
)

_NB = _page(
    "nb",
    "Installere factflow",
    """<p>factflow kjører deklarative rørledninger. Denne siden forklarer hvordan du installerer
programmet på en ny maskin og hvordan du sjekker at installasjonen virker som den skal.</p>
<h2>Krav</h2><p>Du trenger en ny versjon av Python og pip for å komme i gang med factflow.</p>""",
)

_SLOW = _page(
    "en",
    "Rate limited page",
    "<p>This page answers 429 Too Many Requests with a Retry-After header the first time it"
    " is asked for, and the real content after that, like a busy documentation server.</p>",
)

_PRIVATE = _page("en", "Private", "<p>Robots.txt denies this page to crawlers.</p>")

# rendered by JavaScript: the HTML as served has an empty #app; /js/late fills #late only
# after 300 ms (what `wait_for_selector` is for)
_JS_APP = _page(
    "en",
    "Rendered page",
    """<div id="app"></div><script>
document.getElementById("app").innerHTML =
  "<h2>Rendered" + " in the browser</h2><p>" + ["This", "text", "exists", "only", "after",
  "the", "script", "ran."].join(" ") + "</p>";
</script>""",
)
_JS_LATE = _page(
    "en",
    "Late page",
    """<div id="slot"></div><script>
setTimeout(function () {
  document.getElementById("slot").innerHTML = '<p id="late">Arrived late.</p>';
}, 300);
</script>""",
)


def _urlset(base: str, paths: list[str]) -> str:
    urls = "".join(f"<url><loc>{base}{p}</loc></url>" for p in paths)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
    )


# what the sitemaps list; every kind of page a crawler meets
PLAIN_SITEMAP_PATHS = [
    "/docs/",
    "/docs/install",
    "/old-guide",
    "/docs/missing",
    "/docs/slow",
    "/private/secret",
    "/files/manual.pdf",
    "/docs/huge",
]
GZIP_SITEMAP_PATHS = ["/docs/guide", "/nb/installere", "/docs/install#requirements"]
# what ends up as content: the redirect lands on /docs/guide, listed too (fetched twice)
CONTENT_PATHS = {"/docs/", "/docs/install", "/docs/guide", "/nb/installere", "/docs/slow"}
# /sitemap-many.xml: a longer crawl, of plain pages /many/0 ... /many/<MANY_PAGES - 1>
MANY_PAGES = 40


@dataclass
class DocSite:
    base: str
    hits: Counter[str] = field(default_factory=Counter)

    def url(self, path: str) -> str:
        return self.base + path


class _Handler(BaseHTTPRequestHandler):
    site: DocSite

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        site = self.site
        path = self.path.split("?")[0]
        site.hits[path] += 1
        html = "text/html; charset=utf-8"
        xml = "application/xml"
        pages = {
            "/docs/": _INDEX,
            "/docs/install": _INSTALL,
            "/docs/guide": _GUIDE,
            "/nb/installere": _NB,
            "/private/secret": _PRIVATE,
            "/js/app": _JS_APP,
            "/js/late": _JS_LATE,
        }
        if path in pages:
            self._send(200, pages[path].encode(), html)
        elif path.startswith("/many/") and path.removeprefix("/many/").isdigit():
            n = path.removeprefix("/many/")
            body = f"<h2>Part {n}</h2><p>" + f"Page {n} of many explains one more thing. " * 40
            self._send(200, _page("en", f"Many {n}", body + "</p>").encode(), html)
        elif path == "/sitemap-many.xml":
            paths = [f"/many/{i}" for i in range(MANY_PAGES)]
            self._send(200, _urlset(site.base, paths).encode(), xml)
        elif path == "/robots.txt":
            robots = f"User-agent: *\nDisallow: /private/\nSitemap: {site.base}/sitemap_index.xml\n"
            self._send(200, robots.encode(), "text/plain")
        elif path == "/sitemap_index.xml":
            entries = "".join(
                f"<sitemap><loc>{site.base}{p}</loc></sitemap>"
                for p in ("/sitemap-pages.xml", "/sitemap-more.xml.gz", "/sitemap-gone.xml")
            )
            body = (
                '<?xml version="1.0" encoding="UTF-8"?><sitemapindex '
                f'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</sitemapindex>'
            )
            self._send(200, body.encode(), xml)
        elif path == "/sitemap-pages.xml":
            self._send(200, _urlset(site.base, PLAIN_SITEMAP_PATHS).encode(), xml)
        elif path == "/sitemap-more.xml.gz":
            data = gzip.compress(_urlset(site.base, GZIP_SITEMAP_PATHS).encode())
            self._send(200, data, "application/x-gzip")
        elif path == "/old-guide":
            self._send(301, b"", html, Location=f"{site.base}/docs/guide")
        elif path == "/docs/slow":
            if site.hits[path] == 1:
                self._send(429, b"slow down", "text/plain", Retry_After="1")
            else:
                self._send(200, _SLOW.encode(), html)
        elif path == "/files/manual.pdf":
            self._send(200, b"%PDF-1.4\n% not really a manual\n", "application/pdf")
        elif path == "/docs/huge":
            paragraph = "<p>" + "huge page text " * 60 + "</p>"
            body = _page("en", "Huge", paragraph * (HUGE_BYTES // len(paragraph) + 1))
            self._send(200, body.encode(), html)
        else:
            self._send(404, b"<html><body>not found</body></html>", html)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # a crawler that stops reading a page it rejected (too large) closes the connection
        # mid-body; that is expected here, not a server error worth a traceback
        pass


@contextmanager
def serve_docsite() -> Iterator[DocSite]:
    """Serve the site on a free port of 127.0.0.1 until the block ends."""
    handler = type("Handler", (_Handler,), {})
    server = _Server(("127.0.0.1", 0), handler)
    site = DocSite(base=f"http://127.0.0.1:{server.server_address[1]}")
    handler.site = site
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
