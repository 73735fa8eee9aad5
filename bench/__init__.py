"""`make bench`: the services under real HTTP load from wrk, with a report anyone can rerun."""
