# The service image: the API, the worker, beat and the tracker are all `catalogctl <command>`
# (see docker-compose.yml). Build: docker build -t container-catalog .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CATALOG_HOME=/var/lib/catalog \
    CATALOG_BLOB_DIR=/var/lib/catalog/blobs

WORKDIR /src
COPY . .
RUN pip install --no-cache-dir .
# An unprivileged user for the processes that do not talk to the Docker engine. The data
# directories exist in the image so that a new named volume starts with their owner.
RUN useradd --system --uid 10001 --no-create-home --home-dir /var/lib/catalog catalog \
 && install -d -o catalog -g catalog /var/lib/catalog /var/lib/catalog/blobs

USER catalog
WORKDIR /var/lib/catalog
EXPOSE 8000
ENTRYPOINT ["catalogctl"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
