"""What an email says: each action type's parameters, the built-in templates, the overrides' sandbox."""
