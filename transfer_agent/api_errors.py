"""The one error shape of the internet-side API: {"error", "message", "message_ja"} (English and Japanese)."""
from __future__ import annotations

from fastapi.responses import JSONResponse


class ApiError(Exception):
    def __init__(self, status: int, code: str, en: str, ja: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(en)
        self.status, self.code, self.en, self.ja, self.headers = status, code, en, ja, headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.code, "message": self.en, "message_ja": self.ja},
                            status_code=self.status, headers=self.headers)
