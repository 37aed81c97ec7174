"""What the home page's first load costs a browser: the compressed JavaScript and CSS it must fetch.

Reads the chunk graph Vite writes (`apps/web/dist/.vite/manifest.json`, from `make web-build`): the entry
(`index.html`) with every chunk it imports statically, plus the home page's own chunk and its static
imports (the router loads it on `/`). English needs no locale chunk (it is in the entry). Sizes are of the
gzip twins the build writes beside each file — what the gateway and nginx send. The baseline, measured in
the same run, is the whole build's JavaScript: the ratio says how much of the app a first visit loads
(the 3D viewers and the other pages stay behind). The budget (300 KB of compressed JS) is reported, not
asserted.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

DIST = Path(__file__).resolve().parents[1] / "apps" / "web" / "dist"
BUDGET_BYTES = 300 * 1024
HOME_PAGE = "src/pages/HomePage.vue"


def compressed_size(path: Path) -> int:
    twin = path.with_name(path.name + ".gz")
    return twin.stat().st_size if twin.exists() else len(gzip.compress(path.read_bytes(), 9))


def first_load(manifest: dict[str, Any], roots: list[str]) -> tuple[set[str], set[str]]:
    """The JS and CSS files of `roots` and everything they import statically."""
    scripts: set[str] = set()
    styles: set[str] = set()
    pending = list(roots)
    seen: set[str] = set()
    while pending:
        key = pending.pop()
        if key in seen:
            continue
        seen.add(key)
        chunk = manifest[key]
        scripts.add(chunk["file"])
        styles.update(chunk.get("css", []))
        pending.extend(chunk.get("imports", []))
    return scripts, styles


async def run() -> dict[str, Any]:
    manifest_path = DIST / ".vite" / "manifest.json"
    if not manifest_path.exists():
        raise SystemExit("apps/web is not built: run `make web-build` first")
    manifest = json.loads(manifest_path.read_text())
    entry = next(key for key, chunk in manifest.items() if chunk.get("isEntry"))
    scripts, styles = first_load(manifest, [entry, HOME_PAGE])
    home_js = sum(compressed_size(DIST / name) for name in scripts)
    home_css = sum(compressed_size(DIST / name) for name in styles)
    all_js = sum(compressed_size(path) for path in (DIST / "assets").glob("*.js"))
    result = {
        "home_first_load": {
            "js_gzip_bytes": home_js,
            "css_gzip_bytes": home_css,
            "js_files": len(scripts),
            "budget_bytes": BUDGET_BYTES,
            "ratio_to_budget": round(home_js / BUDGET_BYTES, 3),
        },
        "whole_build": {"js_gzip_bytes": all_js},
        "ratio": round(home_js / all_js, 3),
    }
    print(
        f"home first load: {home_js / 1024:.1f} KB gzip JS in {len(scripts)} files"
        f" + {home_css / 1024:.1f} KB CSS"
        f" ({result['home_first_load']['ratio_to_budget']:.2f} of the 300 KB budget); whole build "
        f"{all_js / 1024:.1f} KB JS, first load is {result['ratio']:.2f} of it"
    )
    return result
