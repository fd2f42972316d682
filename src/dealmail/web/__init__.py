"""FastAPI web app: public pages, staff scanner, `/api/v1`, provider webhooks, dev inbox."""
