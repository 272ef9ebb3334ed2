FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=config.settings.production
RUN apt-get update && apt-get install -y --no-install-recommends gettext && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
RUN pip install --no-cache-dir -e .
COPY . .
RUN python manage.py compilemessages --ignore=.venv \
 && SECRET_KEY=build FIELD_ENCRYPTION_KEY=ZGV2ZWxvcG1lbnQta2V5LW5vdC1mb3ItcHJvZHVjdGk= python manage.py collectstatic --noinput
EXPOSE 8000
