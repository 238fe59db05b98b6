"""The demo's documentation site: factflow's own docs rendered to HTML with a sitemap,
served on 127.0.0.1 (no network needed).

    python scripts/docsite.py build output/site           # README sections + docs/*.md
    python scripts/docsite.py serve output/site --port 8765

`build` turns every `## ` section of README.md into a page (the text before the first
section is the home page, which links to every page) and every docs/*.md into one page,
each in a template with navigation and a footer (what a crawler has to strip), and writes
`sitemap.xml` and `robots.txt`. `serve` prints the sitemap's URL once it listens.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from markdown_it import MarkdownIt

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Page:
    slug: str  # "" for the home page
    title: str
    markdown: str


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def pages(repo: Path = REPO) -> list[Page]:
    """The site's pages: README's intro as home, one per README section, one per doc."""
    readme = (repo / "README.md").read_text(encoding="utf-8")
    parts = re.split(r"^## ", readme, flags=re.MULTILINE)
    intro = parts[0]
    title_match = re.match(r"# (.+)", intro)
    site_title = title_match.group(1).strip() if title_match else "Documentation"
    found = [Page("", site_title, intro)]
    for part in parts[1:]:
        title, _, body = part.partition("\n")
        found.append(Page(_slug(title), title.strip(), f"# {title.strip()}\n{body}"))
    for doc in sorted((repo / "docs").glob("*.md")):
        text = doc.read_text(encoding="utf-8")
        heading = re.search(r"^# (.+)$", text, flags=re.MULTILINE)
        found.append(Page(doc.stem, heading.group(1).strip() if heading else doc.stem, text))
    return found


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - factflow docs</title>
<meta name="description" content="{title}: factflow documentation"></head>
<body><nav><a href="/">Home</a>{nav}</nav>
<main><article>
{body}
{contents}</article></main>
<footer>factflow documentation, rendered from the repository's markdown.</footer>
</body></html>
"""


def render(page: Page, site: list[Page]) -> str:
    md = MarkdownIt("commonmark").enable("table")
    links = [(f"/{p.slug}/" if p.slug else "/", p.title) for p in site if p.slug]
    nav = "".join(f' | <a href="{href}">{html.escape(t)}</a>' for href, t in links)
    contents = ""
    if not page.slug:  # the home page lists every page, so a link crawler finds them all
        items = "".join(f'<li><a href="{href}">{html.escape(t)}</a></li>' for href, t in links)
        contents = f"<h2>Pages</h2><ul>{items}</ul>"
    return _TEMPLATE.format(
        title=html.escape(page.title), nav=nav, body=md.render(page.markdown), contents=contents
    )


def build(out: Path, base_url: str, repo: Path = REPO, copies: int = 1) -> list[str]:
    """Write the site into `out`; returns the page URLs the sitemap lists.

    `copies` > 1 adds copies of every page under /copy-N/ (for bench/ingest.py: a site
    large enough to time).
    """
    site = pages(repo)
    urls = []
    for copy in range(copies):
        prefix = f"copy-{copy}/" if copy else ""
        for page in site:
            path = f"{prefix}{page.slug}/" if page.slug else prefix
            folder = out / path
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "index.html").write_text(render(page, site), encoding="utf-8")
            urls.append(f"{base_url}/{path}")
    entries = "".join(f"<url><loc>{html.escape(u)}</loc></url>" for u in urls)
    (out / "sitemap.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>\n',
        encoding="utf-8",
    )
    (out / "robots.txt").write_text(f"User-agent: *\nSitemap: {base_url}/sitemap.xml\n")
    return urls


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request would drown the demo's output


def serve(folder: Path, port: int) -> None:
    handler = partial(_QuietHandler, directory=str(folder))
    with ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        print(f"http://127.0.0.1:{server.server_address[1]}/sitemap.xml", flush=True)
        server.serve_forever()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="render the site into a folder")
    build_cmd.add_argument("folder", type=Path)
    build_cmd.add_argument("--base-url", default="http://127.0.0.1:8765")
    build_cmd.add_argument("--copies", type=int, default=1, help="copies of every page")
    serve_cmd = commands.add_parser("serve", help="serve a built site on 127.0.0.1")
    serve_cmd.add_argument("folder", type=Path)
    serve_cmd.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    args = parser.parse_args(argv)
    if args.command == "build":
        urls = build(args.folder, args.base_url.rstrip("/"), copies=args.copies)
        print(f"site: {len(urls)} pages in {args.folder}, sitemap {args.base_url}/sitemap.xml")
    else:
        serve(args.folder, args.port)


if __name__ == "__main__":
    main(sys.argv[1:])
