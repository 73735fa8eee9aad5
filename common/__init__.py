"""Code the three services share: handler base, validation, storage, downstream client, start-up."""
