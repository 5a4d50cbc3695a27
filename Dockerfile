# One image for both the web app and the worker; docker-compose.yml picks the command.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /srv/app

# Requirements first, so that code changes do not reinstall every package.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY app ./app
COPY worker.py gunicorn.conf.py ./

# The worker forks a work horse per job; neither needs root.
RUN useradd --create-home --uid 10001 jobs
USER jobs

EXPOSE 8000
# Workers, threads and the stream bound: gunicorn.conf.py (WEB_WORKERS, WEB_THREADS, EVENT_STREAMS_PER_WORKER).
CMD ["gunicorn", "-c", "gunicorn.conf.py"]
