"""What other programs talk to: ``http`` (``ragcli serve``: a JSON API, Server-Sent Events, an
OpenAI-compatible chat endpoint and the page in ``page/``) and ``mcp`` (``ragcli mcp``: Model
Context Protocol tools over stdio), with ``openai`` for the chat-completions shapes. Both are
thin layers over ``pipeline.serving.Service``."""
