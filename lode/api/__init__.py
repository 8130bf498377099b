"""The REST server (`lode serve`): the FastAPI app in app.py, its routes and security (its commands are in
lode/cli_server.py).

Importing this package loads no web framework: the CLI imports lode.api.keys cheaply.
"""
