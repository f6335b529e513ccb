"""Wire surfaces of other services (Judge0, Piston, Codapi), each a thin adapter over the Runner."""
