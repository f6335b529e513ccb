"""Drop-in compatibility surfaces (contract §5): other services' wire APIs over the Runner."""
