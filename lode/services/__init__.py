"""The use cases that every interface (CLI, REST API, MCP server, job worker) calls."""
