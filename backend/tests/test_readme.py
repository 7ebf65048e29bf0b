"""The README's curl walk is scripts/walk's, line for line (CI runs the script against
a live server, so the README cannot drift from what runs); the contract it links is in
the repository."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_walk_is_the_script() -> None:
    script = (ROOT / "scripts" / "walk").read_text()
    walk = script.split("# --- walk ---\n", 1)[1].split("# --- end ---\n", 1)[0]
    readme = (ROOT / "README.md").read_text()
    assert "logout" in walk
    assert f"```sh\n{walk}```\n" in readme


def test_the_readme_links_resolve_inside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "](docs/API.md)" in readme
    assert "](../" not in readme  # no link leaves the repository
    assert (ROOT / "docs" / "API.md").read_text().startswith("# The product contract")
