"""The fidesmail app: `python app.py` serves it under gunicorn; `gunicorn app:app` and `flask` load it."""

from fidesmail import create_app
from fidesmail.server import serve

if __name__ == "__main__":
    serve(create_app)
else:
    app = create_app()
