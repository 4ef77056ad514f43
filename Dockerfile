# One image for every Wangge service; the service is chosen by the command,
# e.g. `wangge-service intake`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY wangge wangge
COPY services services
RUN pip install --no-cache-dir . && useradd --system --uid 10001 wangge
USER wangge
ENTRYPOINT ["wangge-service"]
