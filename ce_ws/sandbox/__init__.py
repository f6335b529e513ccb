"""Everything about boxes: the seam (`base`) and the Docker backend (`docker`).

Knows nothing of WebSockets. Import the seam from `ce_ws.sandbox.base` (no
container engine is loaded) and the backend from `ce_ws.sandbox.docker`.
"""
