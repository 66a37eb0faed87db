"""The OpenAPI document, generated from the marshmallow schemas."""

from __future__ import annotations

import tempfile

import yaml

from catalog import create_app


def openapi_document() -> dict:
    with tempfile.TemporaryDirectory() as home:
        app = create_app({"DATABASE_URL": "sqlite://", "BLOB_DIR": home, "CATALOG_HOME": home})
        with app.app_context():
            return app.extensions["catalog"]["api"].spec.to_dict()


def openapi_yaml() -> str:
    return yaml.safe_dump(openapi_document(), sort_keys=True, allow_unicode=True)
