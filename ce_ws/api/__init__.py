"""The wire surfaces: the aiohttp app, the WebSocket, REST and the operational endpoints.

Each surface is an adapter over `ce_ws.runs.Runner`: it parses its wire
format, starts runs through the Runner, and translates what runs send back.
"""
