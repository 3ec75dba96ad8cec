"""Benchmark tooling: scripts/bench-protocol (protocol core) and scripts/bench (session workload).

Owns: starting our server and the reference servers (python-socketio on uvicorn, Node socket.io), driving
them one at a time with the same Node driver (bench/driver.mjs, the official socket.io-client), and reporting.
Must not know: the internals of our server; it is started by its command line only. Not part of the product
(never imported by actors/ or server/).
"""
