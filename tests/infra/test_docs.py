"""The docs agree with the code: every setting is documented, and every link of the README leads somewhere."""

from __future__ import annotations

import re

from devstack import ROOT
from orders_core.config import Settings

OPERATING = ROOT / "docs" / "operating.md"


def configuration_table() -> str:
    text = OPERATING.read_text(encoding="utf-8")
    return text[text.index("## Configuration") :].split("\n## ", 1)[0]


def test_every_setting_is_in_the_configuration_table() -> None:
    table = configuration_table()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    missing = Settings.environment_names() - documented
    assert not missing, f"document these in {OPERATING.relative_to(ROOT)}'s Configuration table: {sorted(missing)}"


def test_every_local_link_of_the_readme_and_docs_leads_to_a_file() -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\((?!https?:|#|mailto:)([^)#\s]+)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to a missing {target}"
