"""marshmallow schemas of the API: what comes in and what goes out."""
