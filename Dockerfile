# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY mensajero ./mensajero
COPY migrations ./migrations
RUN uv sync --frozen --no-dev

FROM python:3.11-slim AS runtime
RUN useradd --create-home --uid 10001 mensajero
WORKDIR /app
COPY --from=build --chown=mensajero:mensajero /app /app
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1
USER mensajero
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz').status == 200 else 1)"
CMD ["mensajero", "serve", "--host", "0.0.0.0", "--port", "8000"]
