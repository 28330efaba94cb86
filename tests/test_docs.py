"""Every relative link of the user docs points at a file (and heading) that exists."""

import glob
import os
import re

import pytest

pytestmark = pytest.mark.backend_independent  # markdown links

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", "CHANGELOG.md", "benchmarks/README.md", "export/README.md"]
DOCS += sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))
)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(path):
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens."""
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"```.*?```", "", f.read(), flags=re.S)
    headings = re.findall(r"^#+\s+(.*)$", text, flags=re.M)
    return {
        re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings
    }


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_resolve(doc):
    with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
        links = LINK.findall(f.read())
    broken = []
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue  # https://, mailto:
        target, _, anchor = link.partition("#")
        path = (
            os.path.normpath(os.path.join(ROOT, os.path.dirname(doc), target))
            if target
            else os.path.join(ROOT, doc)
        )
        if not os.path.exists(path):
            broken.append(link)
        elif anchor and path.endswith(".md") and anchor not in _anchors(path):
            broken.append(link)
    assert not broken, f"{doc}: broken links {broken}"
