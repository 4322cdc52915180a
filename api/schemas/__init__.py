"""HTTP schemas, kept apart by role: requests, responses, and what is stored."""
