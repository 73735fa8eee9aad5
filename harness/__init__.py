"""Running the services as real OS processes: shared by the tests and `make bench`."""
