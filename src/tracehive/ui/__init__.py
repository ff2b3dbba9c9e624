"""The web UI's static files (``static/``), served by ``tracehive.api.ui``. No Python code here."""
