"""Operator commands: `python -m funmagic_tasks seed [--image-provider …] [--background-provider …]
[--model-provider …] [--point-cloud-provider …] [--tripo-choice …] [--hunyuan-choice …] [--update]`.
Each takes the application objects the composition root built."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from funmagic_tasks.application.catalog import Catalog
from funmagic_tasks.domain.catalog import InvalidCatalogEntry
from funmagic_tasks.seed import seed_catalog

__all__ = ["seed"]


async def seed(
    catalog: Catalog, argv: Sequence[str], out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Creates the product's tool types, tools and demo banners where missing; prints what it did."""
    parser = argparse.ArgumentParser(prog="python -m funmagic_tasks seed")
    parser.add_argument("--image-provider", default="local", help="provider of image-gen steps (openai)")
    parser.add_argument("--background-provider", default="local", help="provider of remove-bg steps (fal)")
    parser.add_argument("--model-provider", default="local", help="provider of 3d-gen steps (tripo)")
    parser.add_argument(
        "--point-cloud-provider", default="local", help="provider of point-cloud steps (replicate)"
    )
    parser.add_argument(
        "--tripo-choice", default=None, help="a Tripo provider Image to 3D's users may pick per request"
    )
    parser.add_argument(
        "--hunyuan-choice",
        default=None,
        help="a Hunyuan 3D provider Image to 3D's users may pick per request",
    )
    parser.add_argument(
        "--update", action="store_true", help="write the seed's values over existing entries that differ"
    )
    args = parser.parse_args(list(argv))
    out, err = out or sys.stdout, err or sys.stderr  # looked up now: a test may have replaced them
    try:
        report = await seed_catalog(
            catalog,
            image_provider=args.image_provider,
            background_provider=args.background_provider,
            model_provider=args.model_provider,
            point_cloud_provider=args.point_cloud_provider,
            tripo_choice=args.tripo_choice,
            hunyuan_choice=args.hunyuan_choice,
            update_existing=args.update,
        )
    except InvalidCatalogEntry as error:  # e.g. a provider name that is not one
        print(f"seed refused: {error}", file=err)
        return 2
    for group, entries in report.items():
        for name, action in entries.items():
            print(f"{group[:-1].replace('_', ' ')} {name}: {action}", file=out)
    return 0
