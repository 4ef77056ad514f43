"""Care: priority residents, visits, volunteers and the public to-do list (做在网格)."""
