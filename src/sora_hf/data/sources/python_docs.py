"""Python 3.11 documentation (Debian `python3.11-doc`): the `<p>` paragraphs of each section, packed."""

import html
import re
from collections.abc import Iterator
from pathlib import Path

from ..installed_packages import require_path
from .common import pack_units, squash

DOCS_DIR = "/usr/share/doc/python3.11/html"
PACKAGE = "python3.11-doc"
# Generated indexes and tables of contents hold no prose.
_SKIP = re.compile(r"^(genindex.*|search|py-modindex|contents)\.html$")
# Sphinx never nests paragraphs, so a lazy match is exact; a heading closes the current section.
_BLOCK = re.compile(r"<h[1-6]\b|<p(?: class=\"([^\"]*)\")?>(.*?)</p>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_HEADERLINK = re.compile(r"<a class=\"headerlink\".*?</a>", re.DOTALL)


def check_python_docs() -> None:
    """Raise `MissingDataError` naming the Debian package when the Python docs are not installed."""
    require_path(f"{DOCS_DIR}/library/index.html", PACKAGE)


def html_paragraphs(page: str) -> Iterator[list[str]]:
    """Yield the plain-text paragraphs of each section of a Sphinx page."""
    section: list[str] = []
    for match in _BLOCK.finditer(page):
        if match.group(2) is None:
            if section:
                yield section
            section = []
            continue
        if match.group(1) and "admonition-title" in match.group(1):
            continue
        text = squash(html.unescape(_TAG.sub("", _HEADERLINK.sub("", match.group(2)))))
        if text:
            section.append(text)
    if section:
        yield section


def read_python_docs() -> Iterator[str]:
    """Yield documents of consecutive paragraphs from one section of each page, pages in path order."""
    check_python_docs()
    root = Path(DOCS_DIR)
    for path in sorted(root.rglob("*.html")):
        if _SKIP.match(path.name) and path.parent == root:
            continue
        for section in html_paragraphs(path.read_text(encoding="utf-8")):
            yield from pack_units(section)
