"""The server's settings are the one settings model (factflow/settings.py); `ApiSettings`
is its name in the API (`create_app(ApiSettings(...))`)."""

from factflow.settings import Settings as ApiSettings

__all__ = ["ApiSettings"]
