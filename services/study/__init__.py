"""Study: material reaches every grid group, and nobody drops out unseen (学在网格)."""
