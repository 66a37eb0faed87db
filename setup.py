"""Installation of the catalog service, its package library, workers and CLI."""

from setuptools import find_packages, setup

setup(
    name="container-catalog",
    version="0.1.0",
    description="Self-hosted application catalog for containers",
    python_requires=">=3.11",
    packages=find_packages(include=["catalog*", "packages*", "workers*", "catalogctl*"]),
    include_package_data=True,
    package_data={
        "packages": ["schema/*.json", "scaffold/*", "scaffold/files/*"],
        # The migrations are a directory Alembic reads, not a package: listed so that a
        # non-editable install (the Docker image) ships them.
        "catalog": ["migrations/*.py", "migrations/*.mako", "migrations/versions/*.py"],
    },
    install_requires=[
        "flask>=3.0,<4",
        "marshmallow>=3.20,<5",
        "celery>=5.4,<6",
        "kombu>=5.4,<6",
        "psycopg2-binary>=2.9.9,<3",
        "SQLAlchemy>=2.0.30,<2.1",
        "alembic>=1.13,<2",
        "docker>=7.1,<9",
        # Templates are publisher code: 3.1.5 and 3.1.6 close sandbox escapes through
        # str.format (CVE-2024-56326) and the attr filter (CVE-2025-27516).
        "Jinja2>=3.1.6,<4",
        "PyYAML>=6.0.1,<7",
        "jsonschema>=4.21,<5",
        "click>=8.1,<9",
        "semantic_version>=2.10,<3",
        "flask-smorest>=0.45,<0.48",
        "webargs>=8.4,<9",
        "apispec>=6.6,<7",
        "Flask-Limiter>=3.8,<5",
        # Rate limit counts and stream slots shared by several API processes (redis://...).
        "redis>=5.0,<8",
        "gunicorn>=24,<28",  # 24: a listening socket per worker with reuse_port
        "requests>=2.31,<3",
        "rich>=13.7,<16",
        "orjson>=3.9,<4",
        "cryptography>=42,<47",  # Fernet: secret parameters encrypted at rest
        "google-re2>=1.1,<2",  # parameter schema patterns matched in linear time
        "cachetools>=5.3,<7",  # how many packages hold a search term, kept for minutes
        # Metrics in the Prometheus format, counted across gunicorn workers (multiprocess).
        "prometheus_client>=0.20,<1",
        "python-json-logger>=3.1,<5",  # CATALOG_LOG_FORMAT=json: one JSON object per line
    ],
    extras_require={
        "test": [
            "pytest>=8.2,<10",
            "ruff>=0.6,<1",
            "mypy>=1.11,<2",
            "types-PyYAML",
            "types-requests",
            "types-docker",
            "types-jsonschema",
            "types-cachetools",
            "schemathesis>=3.39,<5",
        ],
    },
    entry_points={"console_scripts": ["catalogctl=catalogctl.main:main"]},
)
