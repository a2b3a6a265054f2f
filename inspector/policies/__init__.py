"""Built-in policies (YAML), written from the vendors' own documents."""
