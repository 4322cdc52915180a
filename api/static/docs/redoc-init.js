// ReDoc on our own OpenAPI document, without Google Fonts (offline).
Redoc.init("/openapi.json", { hideDownloadButton: false }, document.getElementById("redoc"));
