"""The fidesmail app: `python app.py` serves it under gunicorn; `gunicorn app:app` and `flask` load it."""

from fidesmail import create_app
from fidesmail.server import serve

app = create_app()

if __name__ == "__main__":
    serve(app)
