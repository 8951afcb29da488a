# adplatform image: web (gunicorn), projections consumer, Celery worker/beat.
# TORCH_SPEC selects the torch build: the CPU wheel by default; pass e.g.
# --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 for the GPU ml worker.
FROM python:3.11-slim-bookworm
ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=adplatform.settings.production
WORKDIR /app
RUN pip install --no-cache-dir --index-url "$TORCH_INDEX" "$TORCH_SPEC"
COPY pyproject.toml README.md ./
COPY . .
RUN pip install --no-cache-dir "$TORCH_SPEC" . \
 && DJANGO_SECRET_KEY=build TRACKING_SECRET=build DATABASE_URL=postgres://x@localhost/x \
    python manage.py collectstatic --noinput
RUN useradd --create-home app
USER app
EXPOSE 8000
CMD ["gunicorn", "adplatform.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "4"]
