FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# The runtime lock first, so the dependency layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
RUN pip install --no-cache-dir --no-deps . \
 && DJANGO_DEBUG=1 python manage.py collectstatic --noinput
RUN useradd --system --uid 1000 app && chown -R app /app/var 2>/dev/null || true
USER app
EXPOSE 8000
CMD ["gunicorn", "licensing_portal.wsgi:application", "--bind=0.0.0.0:8000", "--workers=4"]
