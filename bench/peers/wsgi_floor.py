"""gunicorn's own floor for bench/django_bench.py: a bare WSGI callable answering a small JSON
body, no framework. No endpoint gunicorn serves can cost less than this."""

BODY = b'{"items":[],"next_cursor":null,"counts":{"open":0,"closed":0}}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
