"""Terraform and the Helm chart set only settings the code reads, and every setting production needs."""

from __future__ import annotations

import re
from pathlib import Path

import hcl2
import pytest
import yaml
from pydantic import BaseModel
from pydantic_settings import BaseSettings

from alerts.settings import AlertsSettings
from billing.settings import BillingSettings
from core.objectstore_settings import ObjectStoreSettings
from core.settings import Settings
from dvr.settings import DvrSettings
from inference.settings import InferenceSettings
from live.settings import LiveSettings
from mobile_push.settings import PushSettings

INFRA = Path(__file__).resolve().parents[2] / "infra"
TERRAFORM = INFRA / "terraform"
CHART_VALUES = INFRA / "helm" / "vigie" / "values.yaml"


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
    owners: list[tuple[str, type[BaseSettings]]] = [
        ("VIGIE_OBJECTSTORE_", ObjectStoreSettings), ("VIGIE_DVR_", DvrSettings), ("VIGIE_ALERTS_", AlertsSettings),
        ("VIGIE_INFERENCE_", InferenceSettings), ("VIGIE_PUSH_", PushSettings), ("VIGIE_LIVE_", LiveSettings),
        ("VIGIE_BILLING_", BillingSettings), ("VIGIE_", Settings)]
    for prefix, model in owners:
        if key.startswith(prefix):
            return _resolves(model, key[len(prefix):].lower().split("__"))
    return False


def test_terraform_sets_only_real_settings() -> None:
    keys = _keys()
    assert len(keys) >= 15, keys
    unknown = sorted(k for k in keys if not _setting_exists(k))
    assert unknown == []


def _chart_keys() -> set[str]:
    """Every VIGIE_* variable the chart gives a process: shared config, each process's env, its secrets."""
    values = yaml.safe_load(CHART_VALUES.read_text())
    keys = set(values["config"])
    for process in values["processes"].values():
        keys |= set(process.get("env", {}))
    for secrets in values["secretEnv"].values():
        keys |= set(secrets)
    return keys


def test_the_chart_sets_only_real_settings() -> None:
    keys = _chart_keys()
    assert len(keys) >= 30, keys
    assert sorted(k for k in keys if not _setting_exists(k)) == []


def test_every_setting_production_needs_is_set() -> None:
    """Trusted proxies, the store's public endpoint for signed links, FCM credentials, the model and its backend, the
    OIDC client and the token issuer: set by terraform or the chart, the secret ones from the secret store."""
    set_somewhere = _keys() | _chart_keys()
    needed = {"VIGIE_API__TRUSTED_PROXIES", "VIGIE_OBJECTSTORE_PUBLIC_ENDPOINT", "VIGIE_PUSH_SERVICE_ACCOUNT_FILE",
              "VIGIE_INFERENCE_MODEL_PATH", "VIGIE_INFERENCE_LABELS_PATH", "VIGIE_INFERENCE_BACKEND",
              "VIGIE_OIDC__ISSUER", "VIGIE_OIDC__CLIENT_ID", "VIGIE_OIDC__CLIENT_SECRET", "VIGIE_OIDC__REDIRECT_URI",
              "VIGIE_AUTH__ISSUER", "VIGIE_API__PUBLIC_URL", "VIGIE_LIVE_PUBLIC_URL", "VIGIE_LIVE_TICKET_KEY",
              "VIGIE_DATA_KEY", "VIGIE_OBJECTSTORE_PRESIGN_SECRET", "VIGIE_NATS__PASSWORD",
              "VIGIE_NATS__STREAM_REPLICAS", "VIGIE_ENVIRONMENT"}
    assert sorted(needed - set_somewhere) == []


def test_each_process_gets_only_its_own_secrets() -> None:
    secrets = yaml.safe_load(CHART_VALUES.read_text())["secretEnv"]
    # The API holds no department password (it reads across tenants only through the sign-in functions).
    assert "VIGIE_DATABASE__DEPARTMENT_PASSWORD" not in secrets["api"]
    for process in ("api", "inference", "alerts", "dvr", "mobile_push"):
        assert secrets[process]["VIGIE_NATS__PASSWORD"] == f"nats_password_{process}"


@pytest.mark.parametrize("key", ["VIGIE_DATABASE__NOPE", "VIGIE_DVR_NOPE", "VIGIE_NOPE"])
def test_the_check_would_catch_a_typo(key: str) -> None:
    assert not _setting_exists(key)
