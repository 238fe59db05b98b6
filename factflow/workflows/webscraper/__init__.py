"""The seed system's webscraper adapters: `sitemap_parser` -> `url_expander` ->
`web_scraper` (or `web_crawler`) -> `web_content_storage`."""

from factflow.workflows.webscraper.scraper import WebScraperAdapter
from factflow.workflows.webscraper.sitemap import SitemapParserAdapter
from factflow.workflows.webscraper.storage import WebContentStorageAdapter
from factflow.workflows.webscraper.urls import UrlExpanderAdapter

__all__ = [
    "SitemapParserAdapter",
    "UrlExpanderAdapter",
    "WebContentStorageAdapter",
    "WebScraperAdapter",
]
