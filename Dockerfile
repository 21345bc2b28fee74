FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
COPY . .
RUN pip install --no-cache-dir -e . \
 && DJANGO_DEBUG=1 python manage.py collectstatic --noinput
RUN useradd --system --uid 1000 app && chown -R app /app/var 2>/dev/null || true
USER app
EXPOSE 8000
CMD ["gunicorn", "licensing_portal.wsgi:application", "--bind=0.0.0.0:8000", "--workers=4"]
