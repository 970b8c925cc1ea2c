"""HTTP pieces shared by the controller's server and the model servers (ASGI middleware)."""
