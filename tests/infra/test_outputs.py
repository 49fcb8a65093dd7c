"""Every stack output is described where it is declared, and the outputs table of the
configuration reference (docs/configuration.md) is that list.

(That the platforms export exactly these names is checked by their own tests:
tests/infra/aws/test_program.py and tests/infra/gcp/test_platform.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.outputs import STACK_OUTPUTS

REPO = Path(__file__).resolve().parents[2]
HEADER = "| output | description |"


def reference_row(name: str, description: str) -> str:
    """The outputs table's row for an output, from its declaration."""
    return f"| `{name}` | {description} |"


def outputs_table(page: str) -> list[str]:
    """The rows of a page's outputs table: the lines after its header and separator, up to
    the first line that is not a table row."""
    lines = page.splitlines()
    assert lines.count(HEADER) == 1, f"the page needs exactly one table headed {HEADER!r}"
    start = lines.index(HEADER) + 2
    assert lines[start - 1] == "|---|---|"
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


@pytest.mark.parametrize("name", list(STACK_OUTPUTS))
def test_every_output_has_a_description(name: str):
    description = STACK_OUTPUTS[name]
    assert description.strip(), f"stack output {name!r} has no description"
    # One table cell: a sentence on one line, with no column separator in it.
    assert description == description.strip()
    assert description.endswith(".")
    assert "\n" not in description
    assert "|" not in description


def test_the_reference_outputs_table_is_the_declared_list():
    reference = (REPO / "docs" / "configuration.md").read_text()
    wanted = [reference_row(name, description) for name, description in STACK_OUTPUTS.items()]
    assert outputs_table(reference) == wanted
