"""Checks of the files edgeres ships beside its code: the ImageNet class names, the profile report's JSON
schema and the calibration photographs. A missing or damaged one means a damaged install.

Each check takes its path (default: this install's), so a test can point it at a broken copy.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgeres.artifacts.class_names import IMAGENET_CLASS_COUNT, read_class_names
from edgeres.doctor.check import Outcome, error_text, failed, passed
from edgeres.errors import UserInputError

PACKAGE_DIR = Path(__file__).resolve().parents[1]
# The files edgeres.artifacts.class_names and edgeres.profile.report read (through importlib.resources).
CLASS_NAMES = PACKAGE_DIR / "data" / "imagenet_classes.txt"
REPORT_SCHEMA = PACKAGE_DIR / "profile" / "schemas" / "profile_report.schema.json"
JPEG_SUFFIXES = (".jpg", ".jpeg")


def reinstall_fix(path: Path) -> str:
    return (f"the install is damaged ({path.name}): pip install --force-reinstall --no-deps edgeres, "
            f"or in a checkout git checkout -- {path}")  # fmt: skip


def check_class_names(path: Path = CLASS_NAMES) -> Outcome:
    """The shipped ImageNet-1k names: a readable UTF-8 file of exactly 1000 non-blank lines."""
    try:
        names = read_class_names(path)
    except (UserInputError, OSError) as exc:  # missing, unreadable or malformed: all the same advice
        return failed(error_text(exc), reinstall_fix(path))
    if len(names) != IMAGENET_CLASS_COUNT:
        return failed(f"{path}: {len(names)} class names, expected {IMAGENET_CLASS_COUNT}", reinstall_fix(path))
    return passed(f"{path}: {len(names)} names")


def check_report_schema(path: Path = REPORT_SCHEMA) -> Outcome:
    """The profile report's JSON schema (`edgeres profile --json` validates against it) parses as an object."""
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return failed(f"{path}: {exc.strerror if isinstance(exc, OSError) else exc}", reinstall_fix(path))
    if not isinstance(schema, dict):
        return failed(f"{path}: a JSON {type(schema).__name__}, not a schema object", reinstall_fix(path))
    return passed(f"{path}: valid JSON")


def check_calibration_photographs(folder: Path | None = None) -> Outcome:
    """The shipped photographs `edgeres build` calibrates on by default: present, and every JPEG decodes."""
    from edgeres.frames.images import default_calibration_dir, read_rgb  # OpenCV: a broken one is this FAIL

    folder = default_calibration_dir() if folder is None else Path(folder)
    fix = reinstall_fix(folder)
    if not folder.is_dir():
        return failed(f"{folder}: no such folder", fix)
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in JPEG_SUFFIXES and p.is_file())
    if not photos:
        return failed(f"{folder}: no JPEG photographs", fix)
    for photo in photos:  # all of them: the default calibration reads every one
        try:
            read_rgb(photo)
        except (UserInputError, OSError) as exc:  # truncated, undecodable, unreadable
            return failed(f"{len(photos)} photographs in {folder}, one unreadable: {error_text(exc)}", fix)
    return passed(f"{folder}: {len(photos)} JPEG photographs, all readable")
