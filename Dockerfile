# One image for web, beat and worker; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY scheduler_project ./scheduler_project
COPY shells ./shells
COPY triggers ./triggers
COPY runs ./runs
COPY schedules ./schedules
COPY workspaces ./workspaces
COPY adapters ./adapters
COPY core ./core
COPY manage.py ./
# No 'embedded' extra: in containers PostgreSQL and Redis are their own services.
RUN pip install --no-cache-dir -e . && useradd --create-home tickwise
USER tickwise
