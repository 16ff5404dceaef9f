# deepcream web service. Not built or run on the project's machines (they have no Docker
# engine): kept minimal; see docs/server.md ("Docker").
#   docker build -t deepcream .
#   docker run --rm -p 8000:8000 -v "$HOME/.cache/deepcream/models:/models:ro" deepcream
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEEPCREAM_MODELS=/models

WORKDIR /app
COPY pyproject.toml README.md ./
COPY deepcream ./deepcream
# The benchmark package is part of the distribution (pyproject maps benchmarks/); tiny.
COPY benchmarks ./benchmarks
RUN pip install . \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin deepcream \
    && mkdir -p /models \
    && chown deepcream /models

# Converted models (bar.onnx, mosaic.onnx, manifest.json) are mounted here; without them the
# service runs the classical engine and says so in every answer.
VOLUME ["/models"]
USER deepcream
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
CMD ["deepcream", "serve", "--host", "0.0.0.0", "--port", "8000", "--models", "/models"]
