"""The seed system's webscraper adapters: `sitemap_parser` -> `url_expander` ->
`web_scraper` (or `web_crawler`) -> `web_content_storage`; `link_crawler` for sites without
a sitemap (start URL -> pages)."""

from factflow.workflows.webscraper.browser import WebCrawlerAdapter
from factflow.workflows.webscraper.links import LinkCrawlerAdapter
from factflow.workflows.webscraper.scraper import WebScraperAdapter
from factflow.workflows.webscraper.sitemap import SitemapParserAdapter
from factflow.workflows.webscraper.storage import WebContentStorageAdapter
from factflow.workflows.webscraper.urls import UrlExpanderAdapter

__all__ = [
    "LinkCrawlerAdapter",
    "SitemapParserAdapter",
    "UrlExpanderAdapter",
    "WebContentStorageAdapter",
    "WebCrawlerAdapter",
    "WebScraperAdapter",
]
