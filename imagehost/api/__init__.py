"""REST API for clients (``/api/v1/``): a thin DRF layer over ``imagehost.services``."""
