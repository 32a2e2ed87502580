-- loyalty 0.1.0 -> 0.2.0.  Pieces of this directory are concatenated in name
-- order into loyalty--0.1.0--0.2.0.sql (Makefile).  Each piece brings the
-- schema from the state the pieces before it leave to the next; the test
-- test/upgrade checks that the result equals a fresh 0.2.0 install.
\echo Use "ALTER EXTENSION loyalty UPDATE TO '0.2.0'" to load this file. \quit
