"""The `ce` command: a terminal client of the native WebSocket protocol.

It talks to a server only through the wire contract (docs/protocol.md), as
any third-party client would; it never imports the server's runs or
sandbox layers.

    main.py        the command line: `ce run`, `ce languages`, `ce watch`
    settings.py    CE_SERVER / CE_TOKEN, loaded once
    endpoints.py   a server URL to its WebSocket and REST addresses; room URLs
    extensions.py  a file's extension to one of the server's languages
    outcome.py     an `exit` (or a refusal) to a shell exit status and why
    terminal.py    raw mode, window size, restored on every way out
    output.py      where the program's output bytes go on our side
    session.py     one run over the WebSocket: keys in, output out, one ending
    watch.py       follow a live room read-only
"""
