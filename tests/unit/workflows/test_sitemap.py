"""sitemap_parser: indexes, gzip, max_urls, broken children, and the parser's edge cases."""

from __future__ import annotations

import gzip

import pytest

from factflow.workflows.errors import FetchError
from factflow.workflows.webscraper.sitemap import (
    SitemapParserAdapter,
    decode_sitemap,
    parse_sitemap,
)
from tests.docsite import GZIP_SITEMAP_PATHS, PLAIN_SITEMAP_PATHS, DocSite
from tests.unit.workflows.helpers import call


def test_index_is_followed_into_plain_and_gzipped_sitemaps(site: DocSite) -> None:
    [out] = call(SitemapParserAdapter({}), {"sitemap_url": site.url("/sitemap_index.xml")})
    expected = [site.url(p) for p in PLAIN_SITEMAP_PATHS + GZIP_SITEMAP_PATHS]
    assert out.payload["urls"] == expected
    assert out.payload["sitemaps"] == [
        site.url(p) for p in ("/sitemap_index.xml", "/sitemap-pages.xml", "/sitemap-more.xml.gz")
    ]
    # the missing child is reported, not fatal
    [error] = out.payload["errors"]
    assert error["sitemap"] == site.url("/sitemap-gone.xml")
    assert "404" in error["error"]


def test_max_urls_stops_early_without_reading_more_sitemaps(site: DocSite) -> None:
    [out] = call(
        SitemapParserAdapter({"max_urls": 3}), {"sitemap_url": site.url("/sitemap_index.xml")}
    )
    assert out.payload["urls"] == [site.url(p) for p in PLAIN_SITEMAP_PATHS[:3]]
    assert site.hits["/sitemap-more.xml.gz"] == 0


def test_a_root_sitemap_that_is_missing_fails_the_message(site: DocSite) -> None:
    with pytest.raises(FetchError, match="404"):
        call(SitemapParserAdapter({}), {"sitemap_url": site.url("/nope.xml")})


def test_a_payload_without_a_sitemap_url_is_an_error() -> None:
    with pytest.raises(ValueError, match="sitemap_url"):
        call(SitemapParserAdapter({}), {"something": "else"})


def test_plain_text_sitemaps_and_namespaced_xml_parse() -> None:
    assert parse_sitemap(b"https://a.example/1\n\nhttps://a.example/2\n") == (
        ["https://a.example/1", "https://a.example/2"],
        [],
    )
    index = (
        b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<sitemap><loc> https://a.example/s.xml </loc></sitemap></sitemapindex>"
    )
    assert parse_sitemap(index) == ([], ["https://a.example/s.xml"])


@pytest.mark.parametrize(
    "data",
    [b"<html><body>not a sitemap</body></html>", b"<urlset><url><loc>x", b"just words"],
)
def test_what_is_not_a_sitemap_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_sitemap(data)


def test_entities_are_not_expanded() -> None:
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc>&x;</loc></url></urlset>"
    )
    urls, _ = parse_sitemap(evil)
    assert all("root:" not in u for u in urls)


def test_gzip_bombs_are_bounded() -> None:
    bomb = gzip.compress(b"<urlset>" + b" " * 2_000_000 + b"</urlset>")
    with pytest.raises(ValueError, match="inflates beyond"):
        decode_sitemap(bomb, max_bytes=100_000)
    assert decode_sitemap(b"<urlset/>", 10) == b"<urlset/>"
