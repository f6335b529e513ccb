"""Wire surfaces that let clients written for other services use this server unchanged."""
