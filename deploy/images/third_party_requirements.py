"""Print the third-party requirements of the FunMagic packages, one per line, for the service image.

The image installs these in a layer of their own, from the pyproject.toml files alone, before it copies
any source: a code change then rebuilds only the last, small layer. The funmagic-* packages are left
out (they are installed from source afterwards, without their dependencies).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def third_party_requirements(pyprojects: list[Path]) -> list[str]:
    requirements: set[str] = set()
    for pyproject in pyprojects:
        project = tomllib.loads(pyproject.read_text())["project"]
        requirements |= {r for r in project.get("dependencies", []) if not r.startswith("funmagic-")}
    return sorted(requirements)


if __name__ == "__main__":
    print("\n".join(third_party_requirements([Path(p) for p in sys.argv[1:]])))
