"""The deployment configuration only sets settings the code reads."""

from __future__ import annotations

import re
from pathlib import Path

import hcl2
import pytest
from pydantic import BaseModel
from pydantic_settings import BaseSettings

from core.objectstore_settings import ObjectStoreSettings
from core.settings import Settings
from dvr.settings import DvrSettings

TERRAFORM = Path(__file__).resolve().parents[2] / "infra" / "terraform"


def _keys() -> set[str]:
    """Every VIGIE_* variable assigned in the Terraform files (which must also parse as HCL)."""
    keys: set[str] = set()
    for path in sorted(TERRAFORM.glob("*.tf")):
        with path.open() as f:
            hcl2.load(f)  # a syntax error fails here
        keys.update(re.findall(r"\b(VIGIE_[A-Z0-9_]+)\s*=", path.read_text()))
    return keys


def _resolves(model: type[BaseModel], path: list[str]) -> bool:
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    if len(path) == 1:
        return True
    nested = field.annotation
    return isinstance(nested, type) and issubclass(nested, BaseModel) and _resolves(nested, path[1:])


def _setting_exists(key: str) -> bool:
    owners: list[tuple[str, type[BaseSettings]]] = [("VIGIE_OBJECTSTORE_", ObjectStoreSettings),
                                                    ("VIGIE_DVR_", DvrSettings), ("VIGIE_", Settings)]
    for prefix, model in owners:
        if key.startswith(prefix):
            return _resolves(model, key[len(prefix):].lower().split("__"))
    return False


def test_terraform_sets_only_real_settings() -> None:
    keys = _keys()
    assert len(keys) >= 15, keys
    unknown = sorted(k for k in keys if not _setting_exists(k))
    assert unknown == []


@pytest.mark.parametrize("key", ["VIGIE_DATABASE__NOPE", "VIGIE_DVR_NOPE", "VIGIE_NOPE"])
def test_the_check_would_catch_a_typo(key: str) -> None:
    assert not _setting_exists(key)
