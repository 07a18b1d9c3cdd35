"""Authentication (bearer tokens) and authorization (roles) of the simulated cluster."""
