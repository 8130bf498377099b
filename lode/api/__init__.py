"""The REST server (`lode serve`): the FastAPI app in app.py, its routes, security, and the CLI commands around it.

Importing this package loads no web framework: the CLI imports lode.api.keys and lode.api.commands cheaply.
"""
